import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startTestServer, type TestServer } from '../helpers/server.js';
import { createInstance, waitFor } from './helpers.js';

describe('restart policy', () => {
  let server: TestServer;
  beforeAll(async () => {
    // Faster than the defaults so the test is short; the shape (×factor, capped) is the same.
    server = await startTestServer({ instances: { restart: { initialDelayMs: 200, factor: 2, maxDelayMs: 1600, resetAfterSeconds: 30 } } });
  });
  afterAll(() => server.stop());

  it('restarts a crash loop with growing delays and keeps the CPU low', async () => {
    const cpuBefore = process.cpuUsage();
    const t0 = Date.now();
    const created = await createInstance(server, server.adminToken, { name: 'crasher', shell: 'echo boom; exit 7' });
    const looped = await waitFor(server, server.adminToken, created.id, (i) => i.restartCount >= 5, 30_000);
    const wall = Date.now() - t0;
    const cpu = process.cpuUsage(cpuBefore);
    expect(looped.lastError).toBe('exited with code 7');
    expect(['backoff', 'starting', 'running']).toContain(looped.state);
    // 200 + 400 + 800 + 1600 ms of delays at least before the 5th restart.
    expect(wall).toBeGreaterThan(2800);
    // The whole test process (server, client and polling) used well under a core.
    expect((cpu.user + cpu.system) / 1000 / wall).toBeLessThan(0.5);

    // The delays grow ×2 from 200 ms to the 1600 ms cap, and each restart waited at least its delay.
    const res = await fetch(`${server.url}/api/v1/instances/${created.id}/logs?format=ndjson&tail=1000`, {
      headers: { authorization: `Bearer ${server.adminToken}` },
    });
    const notes = (await res.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { t: string; stream: string; line: string })
      .filter((e) => e.stream === 'corral');
    const delays = notes.filter((e) => e.line.startsWith('restarting in')).map((e) => e.line);
    expect(delays.slice(0, 5)).toEqual(['restarting in 0.2 s', 'restarting in 0.4 s', 'restarting in 0.8 s', 'restarting in 1.6 s', 'restarting in 1.6 s']);
    const starts = notes.filter((e) => e.line.startsWith('started')).map((e) => Date.parse(e.t));
    const waits = notes.filter((e) => e.line.startsWith('restarting in')).map((e) => Date.parse(e.t));
    for (let i = 0; i < 4; i++) expect(starts[i + 1]! - waits[i]!).toBeGreaterThanOrEqual([200, 400, 800, 1600][i]! - 5);

    const stopped = await api(server, server.adminToken, 'POST', `/api/v1/instances/${created.id}/stop`);
    expect(stopped.body.state).toBe('stopped');
    // A stopped instance is not restarted by the pending backoff timer.
    await new Promise((r) => setTimeout(r, 2000));
    const after = await api(server, server.adminToken, 'GET', `/api/v1/instances/${created.id}`);
    expect(after.body.state).toBe('stopped');
    expect(after.body.restartCount).toBe(stopped.body.restartCount);
  });

  it('never restarts under "never" and restarts only failures under "on-failure"', async () => {
    const never = await createInstance(server, server.adminToken, { name: 'never', shell: 'exit 1', restart: 'never' });
    const onFailure = await createInstance(server, server.adminToken, { name: 'onfail', shell: 'exit 2', restart: 'on-failure' });
    const a = await waitFor(server, server.adminToken, never.id, (i) => i.state === 'failed');
    expect(a.restartCount).toBe(0);
    const b = await waitFor(server, server.adminToken, onFailure.id, (i) => i.restartCount >= 1);
    expect(b.exitCode).toBe(2);
  });
});
