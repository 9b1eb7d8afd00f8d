import { afterEach, describe, expect, it } from 'vitest';
import { api, createUser, startTestServer, type TestServer } from '../helpers/server.js';
import { attach, runJob, waitDone } from './helpers.js';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

describe('job capacity', () => {
  it('answers 429 with Retry-After when the queue is full, and runs what it accepted', async () => {
    server = await startTestServer({ jobs: { poolSize: 1, queueLength: 1 } });
    const alice = await createUser(server, 'alice');
    const running = await runJob(server, alice, { runtime: 'sh', entry: 'sleep 1; echo one' }, false);
    const queued = await runJob(server, alice, { runtime: 'sh', entry: 'echo two' }, false);
    expect(running.status).toBe(202);
    expect(queued.status).toBe(202);
    expect(queued.body.state).toBe('queued');
    const refused = await runJob(server, alice, { runtime: 'sh', entry: 'echo three' });
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('busy');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await waitDone(server, alice, running.body.id)).body.stdout).toBe('one\n');
    expect((await waitDone(server, alice, queued.body.id)).body.stdout).toBe('two\n');
  });

  it('keeps one user to their cap while another user’s job starts at once', async () => {
    server = await startTestServer({ jobs: { poolSize: 2, perUserConcurrency: 1 } });
    const alice = await createUser(server, 'alice');
    const bob = await createUser(server, 'bob');
    const a1 = await runJob(server, alice, { runtime: 'sh', entry: 'sleep 1' }, false);
    const a2 = await runJob(server, alice, { runtime: 'sh', entry: 'true' }, false);
    const b1 = await runJob(server, bob, { runtime: 'sh', entry: 'sleep 0.5' }, false);
    expect(a1.body.state).toBe('running');
    expect(a2.body.state).toBe('queued');
    expect(b1.body.state).toBe('running');
    const a2done = await waitDone(server, alice, a2.body.id);
    const a1done = await waitDone(server, alice, a1.body.id);
    expect(a2done.body.status).toBe('ok');
    expect(Date.parse(a2done.body.startedAt)).toBeGreaterThanOrEqual(Date.parse(a1done.body.finishedAt) - 50);
  });

  it('removes results once their retention ends', async () => {
    server = await startTestServer({ jobs: { retentionSeconds: 1 } });
    const alice = await createUser(server, 'alice');
    const res = await runJob(server, alice, { runtime: 'sh', entry: 'echo kept' });
    expect((await api(server, alice, 'GET', `/api/v1/jobs/${res.body.id}`)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 2500));
    const gone = await api(server, alice, 'GET', `/api/v1/jobs/${res.body.id}`);
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe('job_not_found');
  });
});

describe('job attach', () => {
  it('streams output as it comes, then the result', async () => {
    server = await startTestServer();
    const alice = await createUser(server, 'alice');
    const job = await runJob(server, alice, { runtime: 'sh', entry: 'for i in 1 2 3 4 5; do echo $i; sleep 0.5; done; echo bye >&2' }, false);
    const frames = await attach(server.url, alice, job.body.id);
    const out = frames.filter((f) => f.frame.type === 'stdout');
    expect(out.map((f) => f.frame.data).join('')).toBe('1\n2\n3\n4\n5\n');
    // Live, not all at the end: the first and last lines arrive at least 0.4 s apart
    // (even when a busy machine makes the attach late, the later lines come live).
    expect(out[out.length - 1]!.at - out[0]!.at).toBeGreaterThan(400);
    expect(frames.find((f) => f.frame.type === 'stderr')?.frame.data).toBe('bye\n');
    const exit = frames[frames.length - 1]!.frame;
    expect(exit.type).toBe('exit');
    expect(exit.job).toMatchObject({ status: 'ok', stdout: '1\n2\n3\n4\n5\n' });
  });

  it('takes stdin for an interactive job', async () => {
    server = await startTestServer();
    const alice = await createUser(server, 'alice');
    const job = await runJob(server, alice, { runtime: 'sh', entry: 'read line; echo "got $line"', interactive: true }, false);
    const frames = await attach(server.url, alice, job.body.id, (ws) => ws.send('hello\n'));
    expect(frames.filter((f) => f.frame.type === 'stdout').map((f) => f.frame.data).join('')).toBe('got hello\n');
  });

  it('replays a finished job and refuses other users with 404', async () => {
    server = await startTestServer();
    const alice = await createUser(server, 'alice');
    const bob = await createUser(server, 'bob');
    const job = await runJob(server, alice, { runtime: 'sh', entry: 'echo done' });
    const frames = await attach(server.url, alice, job.body.id);
    expect(frames.map((f) => f.frame.type)).toEqual(['stdout', 'exit']);
    await expect(attach(server.url, bob, job.body.id)).rejects.toThrow('HTTP 404');
  });
});
