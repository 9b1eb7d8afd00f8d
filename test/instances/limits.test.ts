/**
 * Limits enforced through the process driver's cgroups: a memory hog is killed and
 * reported as out of memory; a fork bomb hits the pids limit and the server stays fine.
 * Skipped where the server cannot create cgroups (the driver says so at start).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectCgroups } from '../../src/drivers/process/detect.js';
import { api, startTestServer, type TestServer } from '../helpers/server.js';
import { createInstance, processesMatching, waitFor } from './helpers.js';

const cg = await detectCgroups();
const limited = cg.version !== 'none' && cg.writable;

describe.skipIf(!limited)('instance limits', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.stop());

  it('reports a memory hog killed by its memory limit as out of memory', async () => {
    const inst = await createInstance(server, server.adminToken, {
      name: 'hog',
      // Doubles a shell string until the 32 MiB limit kills it.
      shell: 'x=xxxxxxxxxxxxxxxx; while true; do x="$x$x"; done',
      limits: { memoryBytes: 32 * 1024 * 1024 },
      restart: 'never',
    });
    const dead = await waitFor(server, server.adminToken, inst.id, (i) => i.state === 'failed', 30_000);
    expect(dead.lastError).toBe('killed: out of memory');
  });

  it('contains a fork bomb with the pids limit', async () => {
    const marker = `bomb-${process.pid}-${Date.now()}`;
    const inst = await createInstance(server, server.adminToken, {
      name: 'bomb',
      shell: `b() { b | b & }; b; exec sleep 1000 # ${marker}`,
      limits: { pids: 32 },
      restart: 'never',
    });
    await new Promise((r) => setTimeout(r, 2000));
    // The bomb cannot pass its limit (plus bwrap's own processes)…
    expect((await processesMatching(marker)).length).toBeLessThanOrEqual(40);
    // …and the server still answers and can stop it, killing the whole tree.
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(200);
    const stopped = await api(server, server.adminToken, 'POST', `/api/v1/instances/${inst.id}/stop`);
    expect(stopped.body.state).toBe('stopped');
    expect(await processesMatching(marker)).toEqual([]);
  });
});
