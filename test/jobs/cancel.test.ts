/**
 * Cancel: DELETE /api/v1/jobs/{id} (or POST …/cancel) ends a queued job before it starts and
 * a running one with its whole process tree; both end `killed` with the note `cancelled`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createUser, startTestServer, type TestServer } from '../helpers/server.js';
import { processesWith, runJob, waitDone } from './helpers.js';

/** Polls until `pred` holds for the job. */
async function waitFor(server: TestServer, token: string, id: string, pred: (j: any) => boolean) {
  const until = Date.now() + 20_000;
  for (;;) {
    const res = await api(server, token, 'GET', `/api/v1/jobs/${id}`);
    if (pred(res.body)) return res.body;
    if (Date.now() > until) throw new Error(`job ${id} never matched: ${JSON.stringify(res.body)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('job cancel', () => {
  let server: TestServer;
  let alice: string;
  let bob: string;
  beforeAll(async () => {
    server = await startTestServer({ jobs: { poolSize: 1, perUserConcurrency: 1 } });
    alice = await createUser(server, 'alice');
    bob = await createUser(server, 'bob');
  });
  afterAll(() => server.stop());

  it('cancels a running job and kills its whole tree (a setsid child and a double fork)', async () => {
    const marker = `73${process.pid}1`;
    const job = await runJob(
      server,
      alice,
      { runtime: 'sh', entry: `setsid sleep ${marker} & (sh -c "sleep ${marker} &" &); echo up; exec sleep ${marker}`, timeoutSeconds: 25 },
      false,
    );
    await waitFor(server, alice, job.body.id, (j) => j.stdout === 'up\n');
    expect((await processesWith(marker)).length).toBeGreaterThanOrEqual(3);
    const cancelled = await api(server, alice, 'DELETE', `/api/v1/jobs/${job.body.id}`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ state: 'done', status: 'killed', note: 'cancelled' });
    expect(cancelled.body.startedAt).not.toBeNull();
    expect(await processesWith(marker)).toEqual([]);
    // Stored so.
    expect((await api(server, alice, 'GET', `/api/v1/jobs/${job.body.id}`)).body).toMatchObject({ status: 'killed', note: 'cancelled' });
  });

  it('cancels a queued job before it starts (POST …/cancel)', async () => {
    const running = await runJob(server, alice, { runtime: 'sh', entry: 'sleep 1; echo first' }, false);
    const queued = await runJob(server, alice, { runtime: 'sh', entry: 'echo never' }, false);
    expect(queued.body.state).toBe('queued');
    const cancelled = await api(server, alice, 'POST', `/api/v1/jobs/${queued.body.id}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ state: 'done', status: 'killed', note: 'cancelled', stdout: '', startedAt: null });
    // The running one is untouched.
    expect((await waitDone(server, alice, running.body.id)).body).toMatchObject({ status: 'ok', stdout: 'first\n' });
  });

  it('answers 409 for a job that has ended, 404 for another user’s, 400 for a bad id', async () => {
    const done = await runJob(server, alice, { runtime: 'sh', entry: 'true' });
    const again = await api(server, alice, 'DELETE', `/api/v1/jobs/${done.body.id}`);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('invalid_state');
    const slow = await runJob(server, alice, { runtime: 'sh', entry: 'sleep 5' }, false);
    const theirs = await api(server, bob, 'DELETE', `/api/v1/jobs/${slow.body.id}`);
    expect(theirs.status).toBe(404);
    expect(theirs.body.error.code).toBe('job_not_found');
    const bad = await api(server, alice, 'DELETE', '/api/v1/jobs/not-a-uuid');
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/params\.id/);
    await api(server, alice, 'DELETE', `/api/v1/jobs/${slow.body.id}`);
  });
});
