/**
 * Quotas and the credits API's input checks: each quota refuses with a message naming it
 * and its value (403, or 429 for concurrent jobs); admins set a user's own quotas; only
 * admins grant credits, read others' usage or lower an instance's metering.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startTestServer, type TestServer } from '../helpers/server.js';
import { createInstance, waitForState } from '../instances/helpers.js';
import { userWithCredits } from './helpers.js';

const MiB = 1024 * 1024;
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ quotas: { instances: 2, runningInstances: 1, memoryBytes: 300 * MiB, concurrentJobs: 1 } });
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

const expectQuota = (res: { status: number; body: any }, status: number, quota: string, limit: number) => {
  expect(res.status).toBe(status);
  expect(res.body.error).toMatchObject({ code: 'quota_exceeded', quota, limit, message: expect.stringContaining(`quota "${quota}" is ${limit}`) });
};

describe('quotas', () => {
  it('refuses a second running instance, then a third instance, naming the quota', async () => {
    const { token } = await userWithCredits(server, 'quin', 0);
    const one = await createInstance(server, token, { name: 'one', command: ['sleep', '600'], limits: { memoryBytes: 64 * MiB } });
    expectQuota(await api(server, token, 'POST', '/api/v1/instances', { name: 'two', command: ['sleep', '600'] }), 403, 'runningInstances', 1);
    await api(server, token, 'POST', `/api/v1/instances/${one.id}/stop`);
    const two = await createInstance(server, token, { name: 'two', command: ['sleep', '600'], limits: { memoryBytes: 64 * MiB } });
    // Starting the stopped one would make two running.
    expectQuota(await api(server, token, 'POST', `/api/v1/instances/${one.id}/start`), 403, 'runningInstances', 1);
    await api(server, token, 'POST', `/api/v1/instances/${two.id}/stop`);
    expectQuota(await api(server, token, 'POST', '/api/v1/instances', { name: 'three', command: ['sleep', '1'] }), 403, 'instances', 2);
    const mine = await api(server, token, 'GET', '/api/v1/quotas');
    expect(mine.body).toMatchObject({ user: 'quin', quotas: { instances: 2, runningInstances: 1 }, use: { instances: 2, runningInstances: 0 } });
  }, 30_000);

  it('does not count an instance that failed for good towards runningInstances, but counts one in backoff', async () => {
    const { token } = await userWithCredits(server, 'crashy', 0);
    const crash = await createInstance(server, token, { name: 'crash', command: ['sh', '-c', 'exit 3'], restart: 'never', limits: { memoryBytes: 64 * MiB } });
    await waitForState(server, token, crash.id, 'failed');
    const failed = await api(server, token, 'GET', `/api/v1/instances/${crash.id}`);
    expect(failed.body).toMatchObject({ desiredState: 'running', state: 'failed' });
    expect((await api(server, token, 'GET', '/api/v1/quotas')).body.use).toMatchObject({ instances: 1, runningInstances: 0, memoryBytes: 0 });
    // The quota is 1: a new start is allowed, since the failed one runs nothing.
    const live = await createInstance(server, token, { name: 'live', command: ['sleep', '600'], limits: { memoryBytes: 64 * MiB } });
    expect((await api(server, token, 'GET', '/api/v1/quotas')).body.use.runningInstances).toBe(1);
    // Starting the failed one again would make two; the message names the real number.
    const again = await api(server, token, 'POST', `/api/v1/instances/${crash.id}/start`);
    expectQuota(again, 403, 'runningInstances', 1);
    expect(again.body.error.message).toContain('you already have 1 running instance');
    await api(server, token, 'DELETE', `/api/v1/instances/${live.id}`);
    // One that crash-loops (backoff) will start again by itself: it keeps its place.
    const loop = await createInstance(server, token, { name: 'loop', command: ['sh', '-c', 'exit 3'], restart: 'always', limits: { memoryBytes: 64 * MiB } });
    await waitForState(server, token, loop.id, 'backoff');
    expect((await api(server, token, 'GET', '/api/v1/quotas')).body.use.runningInstances).toBe(1);
    await api(server, token, 'DELETE', `/api/v1/instances/${loop.id}`);
    await api(server, token, 'DELETE', `/api/v1/instances/${crash.id}`);
  }, 30_000);

  it('holds under concurrent creates: exactly the quota succeeds', async () => {
    const { token } = await userWithCredits(server, 'race', 0);
    expect((await api(server, server.adminToken, 'PATCH', '/api/v1/users/race/quotas', { runningInstances: 0 })).status).toBe(200);
    const spec = (i: number) => ({ name: `r${i}`, command: ['sleep', '600'], limits: { memoryBytes: 32 * MiB } });
    const results = await Promise.all([0, 1, 2, 3, 4].map((i) => api(server, token, 'POST', '/api/v1/instances', spec(i))));
    expect(results.filter((r) => r.status === 201)).toHaveLength(2);
    for (const r of results.filter((x) => x.status !== 201)) expectQuota(r, 403, 'instances', 2);
    const list = await api(server, token, 'GET', '/api/v1/instances');
    expect(list.body.instances ?? list.body).toHaveLength(2);
    for (const r of results.filter((x) => x.status === 201)) await api(server, token, 'DELETE', `/api/v1/instances/${r.body.id}`);
  }, 30_000);

  it('refuses memory beyond the quota, and follows the overrides an admin sets', async () => {
    const { token } = await userWithCredits(server, 'mem', 0);
    const big = { name: 'big', command: ['sleep', '600'], limits: { memoryBytes: 400 * MiB } };
    expectQuota(await api(server, token, 'POST', '/api/v1/instances', big), 403, 'memoryBytes', 300 * MiB);
    const set = await api(server, server.adminToken, 'PATCH', '/api/v1/users/mem/quotas', { memoryBytes: 512 * MiB, runningInstances: 0 });
    expect(set.status).toBe(200);
    expect(set.body.quotas).toMatchObject({ memoryBytes: 512 * MiB, runningInstances: 0, instances: 2 });
    const created = await api(server, token, 'POST', '/api/v1/instances', big);
    expect(created.status).toBe(201);
    // null goes back to the server's default.
    const reset = await api(server, server.adminToken, 'PATCH', '/api/v1/users/mem/quotas', { memoryBytes: null });
    expect(reset.body.quotas.memoryBytes).toBe(300 * MiB);
    await api(server, token, 'DELETE', `/api/v1/instances/${created.body.id}`);
  }, 30_000);

  it('refuses a second concurrent job with 429 naming the quota', async () => {
    const { token } = await userWithCredits(server, 'jo', 0);
    const first = await api(server, token, 'POST', '/api/v1/jobs?wait=false', { runtime: 'sh', entry: 'sleep 2' });
    expect(first.status).toBe(202);
    const second = await api(server, token, 'POST', '/api/v1/jobs', { runtime: 'sh', entry: 'true' });
    expectQuota(second, 429, 'concurrentJobs', 1);
    expect(second.headers.get('retry-after')).toBe('1');
  }, 30_000);
});

describe('credits API input and permissions', () => {
  it('lets only admins grant, and checks the amount', async () => {
    const { token } = await userWithCredits(server, 'val', 0);
    const post = (t: string, body: unknown, name = 'val') => api(server, t, 'POST', `/api/v1/users/${name}/credits`, body);
    expect((await post(token, { amount: 10 })).status).toBe(403);
    for (const bad of [{ amount: 0 }, { amount: 1.5 }, { amount: 'ten' }, {}, { amount: 5, extra: true }, { amount: 5, reason: '' }]) {
      const res = await post(server.adminToken, bad);
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect(res.body.error.code).toBe('validation_failed');
    }
    expect((await post(server.adminToken, { amount: 5 }, 'nobody')).status).toBe(404);
    const ok = await post(server.adminToken, { amount: -3, reason: 'refund reversed' });
    expect(ok.body).toMatchObject({ user: 'val', balance: -3, entry: { credits: -3, kind: 'grant', reason: 'refund reversed' } });
  });

  it('shows users only their own usage, admins anyone’s, and checks the query', async () => {
    const { token } = await userWithCredits(server, 'pry', 0);
    expect((await api(server, token, 'GET', '/api/v1/usage?user=val')).status).toBe(403);
    const asAdmin = await api(server, server.adminToken, 'GET', '/api/v1/usage?user=val&group=day');
    expect(asAdmin.status).toBe(200);
    expect(asAdmin.body).toMatchObject({ user: 'val', balance: -3, group: 'day' });
    expect(asAdmin.body.groups[0].key).toBe(new Date().toISOString().slice(0, 10));
    const swapped = 'from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z';
    for (const q of ['group=month', 'from=yesterday', 'limit=-1', 'color=red', 'user=Not%20A%20Name', swapped]) {
      const res = await api(server, token, 'GET', `/api/v1/usage?${q}`);
      expect([res.status, res.body.error?.code], q).toEqual([400, 'validation_failed']);
    }
    expect((await api(server, server.adminToken, 'GET', '/api/v1/usage?user=nobody')).status).toBe(404);
    expect((await api(server, undefined, 'GET', '/api/v1/usage')).status).toBe(401);
  });

  it('shows live stats of your own running instances only, unless an admin asks for all', async () => {
    const { token: owner } = await userWithCredits(server, 'lv', 0);
    const { token: other } = await userWithCredits(server, 'nosy', 0);
    const inst = await createInstance(server, owner, { name: 'live', command: ['sleep', '600'], limits: { memoryBytes: 64 * MiB } });
    await waitForState(server, owner, inst.id, 'running');
    const live = async (t: string, q = '') => (await api(server, t, 'GET', `/api/v1/usage/instances${q}`)).body.instances.map((i: any) => i.id);
    expect(await live(owner)).toEqual([inst.id]);
    expect(await live(other, '?all=true')).not.toContain(inst.id);
    expect(await live(server.adminToken, '?all=true')).toContain(inst.id);
    const bad = await api(server, owner, 'GET', '/api/v1/usage/instances?all=maybe');
    expect([bad.status, bad.body.error?.code]).toEqual([400, 'validation_failed']);
    await api(server, owner, 'DELETE', `/api/v1/instances/${inst.id}`);
  }, 30_000);

  it('refuses bad quota changes and lets only admins make them', async () => {
    await userWithCredits(server, 'qq', 0);
    const { token } = await userWithCredits(server, 'qr', 0);
    expect((await api(server, token, 'PATCH', '/api/v1/users/qq/quotas', { instances: 5 })).status).toBe(403);
    for (const bad of [{}, { instances: -1 }, { cpus: 2 }, { instances: 'many' }]) {
      const res = await api(server, server.adminToken, 'PATCH', '/api/v1/users/qq/quotas', bad);
      expect([res.status, res.body.error?.code], JSON.stringify(bad)).toEqual([400, 'validation_failed']);
    }
  });

  it('lets only admins lower an instance’s rate', async () => {
    const { token } = await userWithCredits(server, 'cheap', 100);
    const res = await api(server, token, 'POST', '/api/v1/instances', { name: 'cheap', command: ['sleep', '1'], metered: true, creditsPerSecond: 0.5 });
    expect(res.status).toBe(403);
    expect(res.body.error.message).toMatch(/only admins may set creditsPerSecond/);
    expect((await api(server, token, 'POST', '/api/v1/instances', { name: 'cheap', command: ['sleep', '1'], creditsPerSecond: -1 })).status).toBe(400);
  });
});
