/**
 * The disk limit of an instance's data dir: measured on a timer, an instance over it is
 * stopped with a last error saying so and its files kept; one under it keeps running.
 */
import { link, mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diskUsage } from '../../src/core/instances/disk-watch.js';
import { startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import { createInstance, waitFor, waitForState } from './helpers.js';

const MiB = 1024 * 1024;

describe('diskUsage', () => {
  it('counts allocated bytes, hard links once, and does not follow symlinks', async () => {
    const dir = await tempDir('corral-du-');
    await mkdir(path.join(dir, 'a/b'), { recursive: true });
    await writeFile(path.join(dir, 'a/b/one'), Buffer.alloc(2 * MiB, 1));
    await link(path.join(dir, 'a/b/one'), path.join(dir, 'hard'));
    await symlink('/usr', path.join(dir, 'outside'));
    const used = await diskUsage(dir);
    expect(used).toBeGreaterThanOrEqual(2 * MiB);
    expect(used).toBeLessThan(2 * MiB + 64 * 1024);
    // Counting stops early once past the bound.
    expect(await diskUsage(dir, 1024)).toBeGreaterThan(1024);
  });
});

describe('instance disk limit', () => {
  let server: TestServer;
  let data: string;
  beforeAll(async () => {
    data = await tempDir();
    server = await startTestServer({ data, instances: { diskCheckSeconds: 0.5 } });
  });
  afterAll(() => server.stop());

  it('stops an instance that writes past its limit, keeps its files, and leaves one under it alone', async () => {
    const hog = await createInstance(server, server.adminToken, {
      name: 'disk-hog',
      shell: 'head -c 3000000 /dev/zero > big && echo written && exec sleep 1000',
      limits: { diskBytes: 1 * MiB },
    });
    const small = await createInstance(server, server.adminToken, {
      name: 'disk-ok',
      shell: 'head -c 100000 /dev/zero > small && exec sleep 1000',
      limits: { diskBytes: 1 * MiB },
    });
    const stopped = await waitFor(server, server.adminToken, hog.id, (i) => i.state === 'stopped', 20_000);
    expect(stopped.desiredState).toBe('stopped');
    expect(stopped.lastError).toMatch(/^disk limit exceeded: .*1048576 bytes; its files are kept$/);
    expect(await diskUsage(path.join(data, 'instances', hog.id, 'data'))).toBeGreaterThan(2 * MiB);
    // Two more checks later the small one still runs.
    await new Promise((r) => setTimeout(r, 1500));
    expect((await waitForState(server, server.adminToken, small.id, 'running')).lastError).toBeNull();
  });
});
