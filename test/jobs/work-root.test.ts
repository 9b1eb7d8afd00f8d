/**
 * Where job dirs live: a tmpfs by default (named after the data dir), the data dir on
 * request or when there is no tmpfs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chown, lstat, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { jobWorkRoot, sweepJobWorkRoots } from '../../src/core/jobs/work-root.js';
import { createUser, startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import { runJob } from './helpers.js';

describe('jobWorkRoot', () => {
  it('names a dir on /dev/shm after the data dir, one per data dir', () => {
    const a = jobWorkRoot('/srv/corral-a', 'memory');
    const b = jobWorkRoot('/srv/corral-b', 'memory');
    expect(a).toEqual({ root: expect.stringMatching(/^\/dev\/shm\/corral-jobs-[0-9a-f]{16}$/), inMemory: true });
    expect(b.root).not.toBe(a.root);
    expect(jobWorkRoot('/srv/corral-a/', 'memory').root).toBe(a.root);
  });

  it('uses the data dir when asked, or when the shm dir is not a roomy tmpfs', async () => {
    expect(jobWorkRoot('/srv/corral', 'disk')).toEqual({ root: '/srv/corral/jobs', inMemory: false });
    const notTmpfs = await tempDir('corral-not-shm-');
    expect(jobWorkRoot('/srv/corral', 'memory', notTmpfs)).toEqual({ root: '/srv/corral/jobs', inMemory: false });
    // A tmpfs too small to share (Docker's 64 MiB /dev/shm): disk as well.
    expect(jobWorkRoot('/srv/corral', 'memory', '/dev/shm', 2 ** 60)).toEqual({ root: '/srv/corral/jobs', inMemory: false });
  });
});

describe('sweepJobWorkRoots (leftovers of a killed server)', () => {
  const exists = (p: string) => lstat(p).then(() => true, () => false);
  /** A fake shared tmpfs dir and a data dir, with the roots a server of that data dir uses. */
  async function layout() {
    const shm = await tempDir('corral-fake-shm-');
    const data = await tempDir('corral-sweep-data-');
    const memory = path.basename(jobWorkRoot(data, 'memory').root);
    return { shm, data, memoryRoot: path.join(shm, memory), diskRoot: path.join(data, 'jobs') };
  }

  it('removes this data dir\'s roots in both places, nothing else on the shared dir', async () => {
    const { shm, data, memoryRoot, diskRoot } = await layout();
    for (const root of [memoryRoot, diskRoot]) {
      await mkdir(path.join(root, 'sandbox-1', 'work'), { recursive: true });
      await writeFile(path.join(root, 'sandbox-1', 'work', 'main.sh'), 'echo');
    }
    const other = path.join(shm, 'corral-jobs-0123456789abcdef');
    await mkdir(other);
    expect((await sweepJobWorkRoots(data, shm)).sort()).toEqual([memoryRoot, diskRoot].sort());
    expect(await exists(memoryRoot)).toBe(false);
    expect(await exists(diskRoot)).toBe(false);
    expect(await exists(other)).toBe(true);
    await rm(shm, { recursive: true });
    await rm(data, { recursive: true });
  });

  it('leaves a symlink or a dir of another user under the name alone', async () => {
    const { shm, data, memoryRoot } = await layout();
    const target = await tempDir('corral-sweep-target-');
    await writeFile(path.join(target, 'keep'), 'x');
    await symlink(target, memoryRoot);
    expect(await sweepJobWorkRoots(data, shm)).toEqual([]);
    expect(await exists(path.join(target, 'keep'))).toBe(true);
    await rm(memoryRoot);
    if (process.getuid?.() === 0) {
      await mkdir(memoryRoot);
      await chown(memoryRoot, 65534, 65534);
      expect(await sweepJobWorkRoots(data, shm)).toEqual([]);
      expect(await exists(memoryRoot)).toBe(true);
    }
    await rm(shm, { recursive: true });
    await rm(data, { recursive: true });
    await rm(target, { recursive: true });
  });
});

describe('jobs.workDirs = disk', () => {
  let server: TestServer;
  let alice: string;
  beforeAll(async () => {
    server = await startTestServer({ jobs: { poolSize: 1, workDirs: 'disk' } });
    alice = await createUser(server, 'alice');
  });
  afterAll(() => server.stop());

  it('runs jobs in the data dir, not on a tmpfs', async () => {
    const res = await runJob(server, alice, { runtime: 'sh', entry: 'stat -f -c %T /work; echo x > f; ls' });
    expect(res.body.status).toBe('ok');
    const [fsType, listing] = res.body.stdout.split('\n');
    expect(fsType).not.toBe('tmpfs');
    expect(listing).toBe('f');
    const { readdir } = await import('node:fs/promises');
    expect((await readdir(`${server.data}/jobs`)).length).toBeGreaterThan(0);
  });

  it('refuses an unknown workDirs value at startup', async () => {
    await expect(startTestServer({ jobs: { workDirs: 'ssd' } })).rejects.toThrow(/workDirs/);
  });
});
