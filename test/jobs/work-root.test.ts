/**
 * Where job dirs live: a tmpfs by default (named after the data dir), the data dir on
 * request or when there is no tmpfs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobWorkRoot } from '../../src/core/jobs/work-root.js';
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
