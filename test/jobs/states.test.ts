/**
 * Job states in the store (the isolation issue, item 15): a running job is stored as
 * `running` with its start; a job killed by a shutdown says so in its note; a job a killed
 * server left behind is ended with a note at the next start, and the job dirs that server
 * left on /dev/shm (pre-started sandboxes, the running job's) are swept.
 * The SIGKILL case runs the server as a child process: needs `npm run build`.
 */
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config.js';
import { jobWorkRoot } from '../../src/core/jobs/work-root.js';
import { detectSandbox } from '../../src/drivers/process/detect.js';
import { startServer } from '../../src/server.js';
import { ADMIN_PASSWORD, api, createToken, createUser, login, spawnServer, startTestServer, tempDir, type ChildServer } from '../helpers/server.js';
import { processesWith, waitDone } from './helpers.js';

const sandbox = await detectSandbox();

/** Polls GET /jobs/{id} until `pred` holds. */
async function waitJob(server: { url: string }, token: string, id: string, pred: (j: any) => boolean, ms = 20_000): Promise<any> {
  const until = Date.now() + ms;
  for (;;) {
    const res = await api(server, token, 'GET', `/api/v1/jobs/${id}`);
    if (res.status === 200 && pred(res.body)) return res.body;
    if (Date.now() > until) throw new Error(`job ${id} never matched; last: ${JSON.stringify(res.body)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const entries = (dir: string) => readdir(dir).catch(() => [] as string[]);

describe.skipIf(!sandbox.available)('job states', { timeout: 90_000 }, () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('a running job is stored as running with its start; one killed by a shutdown says why', async () => {
    const first = await startTestServer({ jobs: { poolSize: 1, warmSandboxes: 1 } });
    cleanups.push(() => rm(first.data, { recursive: true, force: true }));
    const alice = await createUser(first, 'alice');
    const marker = `61${process.pid}7`;
    const posted = await api(first, alice, 'POST', '/api/v1/jobs?wait=false', { runtime: 'sh', entry: `echo up; exec sleep ${marker}`, timeoutSeconds: 25 });
    expect(posted.status).toBe(202);
    const id = posted.body.id as string;
    const running = await waitJob(first, alice, id, (j) => j.state === 'running' && j.stdout === 'up\n');
    expect(running.startedAt).not.toBeNull();
    // In the store too, not only in the server's memory.
    const row = await first.corral.store.jobs.byId(id);
    expect(row?.state).toBe('running');
    expect(row?.started_at).toBe(Date.parse(running.startedAt));

    await first.stop({ keepData: true });
    expect(await processesWith(marker)).toEqual([]);
    const again = await startServer(loadConfig({ env: {}, flags: { host: '127.0.0.1', port: 0, logLevel: 'silent', data: first.data } }));
    cleanups.push(() => again.close());
    const done = (await api(again, alice, 'GET', `/api/v1/jobs/${id}`)).body;
    expect(done.state).toBe('done');
    expect(done.status).toBe('killed');
    expect(done.note).toMatch(/^server-shutdown: /);
    expect(done.startedAt).toBe(running.startedAt);
  });

  it('a job that starts at once is inserted as running (no write of its own); one that waited in the queue is marked running when it starts', async () => {
    const server = await startTestServer({ jobs: { poolSize: 1, warmSandboxes: 1 } });
    cleanups.push(() => server.stop());
    const alice = await createUser(server, 'alice');
    const jobs = server.corral.store.jobs;
    const marked: string[] = [];
    const markRunning = jobs.markRunning.bind(jobs);
    jobs.markRunning = async (id, startedAt) => {
      marked.push(id);
      return markRunning(id, startedAt);
    };
    const marker = `63${process.pid}1`;
    const first = (await api(server, alice, 'POST', '/api/v1/jobs?wait=false', { runtime: 'sh', entry: `echo up; exec sleep ${marker}`, timeoutSeconds: 25 })).body.id as string;
    const queued = (await api(server, alice, 'POST', '/api/v1/jobs?wait=false', { runtime: 'sh', entry: 'echo second' })).body.id as string;
    const running = await waitJob(server, alice, first, (j) => j.state === 'running' && j.stdout === 'up\n');
    const row = await jobs.byId(first);
    expect(row?.state).toBe('running');
    expect(row?.started_at).toBe(Date.parse(running.startedAt));
    expect((await jobs.byId(queued))?.state).toBe('queued');
    expect(marked).toEqual([]);

    await api(server, alice, 'DELETE', `/api/v1/jobs/${first}`);
    const second = await waitJob(server, alice, queued, (j) => j.state === 'done');
    expect(second.status).toBe('ok');
    expect(marked).toEqual([queued]);
    expect(second.startedAt).not.toBeNull();
  });

  it('SIGKILL mid-job: at the next start the job is ended with a note and the old job dirs are gone', async () => {
    const data = await tempDir();
    cleanups.push(() => rm(data, { recursive: true, force: true }));
    const env = { CORRAL_JOBS__POOL_SIZE: '1', CORRAL_JOBS__WARM_SANDBOXES: '2' };
    let server: ChildServer = await spawnServer(data, env);
    cleanups.push(() => server.kill('SIGKILL'));
    const token = await createToken(server.url, await login(server.url, 'admin', ADMIN_PASSWORD), 'states');
    const marker = `62${process.pid}9`;
    const posted = await api(server, token, 'POST', '/api/v1/jobs?wait=false', { runtime: 'sh', entry: `echo up; exec sleep ${marker}`, timeoutSeconds: 25 });
    const id = posted.body.id as string;
    await waitJob(server, token, id, (j) => j.state === 'running' && j.stdout === 'up\n');
    const root = jobWorkRoot(data, 'memory').root;
    // The running job's dir and the pre-started ones.
    const before = await entries(root);
    expect(before.length).toBeGreaterThanOrEqual(2);

    await server.kill('SIGKILL');
    // What the dead server left: the row says running, the dirs are still there.
    const db = new Database(path.join(data, 'corral.db'), { readonly: true });
    const row = db.prepare('select state, started_at from jobs where id = ?').get(id) as { state: string; started_at: number | null };
    db.close();
    expect(row.state).toBe('running');
    expect(row.started_at).toBeGreaterThan(0);
    expect(await entries(root)).toEqual(expect.arrayContaining(before));

    // Restarted with its job dirs moved to the data dir: what it left on /dev/shm still goes.
    server = await spawnServer(data, { ...env, CORRAL_JOBS__WORK_DIRS: 'disk' });
    const done = await waitDone(server as never, token, id);
    expect(done.body.state).toBe('done');
    expect(done.body.status).toBe('killed');
    expect(done.body.note).toMatch(/^server-died: /);
    // Every dir of the killed server is gone (the new one keeps its own in the data dir).
    expect(await entries(root)).toEqual([]);
    expect(await entries(path.join(data, 'jobs'))).not.toEqual([]);
    expect(await processesWith(marker)).toEqual([]);
  });
});
