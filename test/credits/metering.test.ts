/**
 * Metering on a real server: an instance running 3 s at 1 credit/s costs 3 ± 1; at zero a
 * metered instance stops ("out of credits", files kept) and new metered work gets 402;
 * a token's credits top up its owner once; many concurrent jobs cannot overspend.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startTestServer, type TestServer } from '../helpers/server.js';
import { createInstance, waitFor, waitForState } from '../instances/helpers.js';
import { consistentBalance, grant, sleep, until, usage, userWithCredits } from './helpers.js';

let server: TestServer;

beforeAll(async () => {
  // Jobs are metered server-wide here; instances only when their spec says so.
  server = await startTestServer({ credits: { intervalSeconds: 1, jobs: { metered: true } } });
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

describe('metering', () => {
  it('charges an instance that ran 3 s at 1 credit/s 3 ± 1 credits, written while it runs', async () => {
    const { token } = await userWithCredits(server, 'ada', 100);
    const inst = await createInstance(server, token, { name: 'timed', command: ['sleep', '600'], metered: true, creditsPerSecond: 1 });
    await waitForState(server, token, inst.id, 'running');
    const running = Date.now();
    // Debits are written every interval, not only at stop.
    await until(() => consistentBalance(server, token), (b) => b < 100, 10_000);
    await sleep(3000 - (Date.now() - running));
    expect((await api(server, token, 'POST', `/api/v1/instances/${inst.id}/stop`)).status).toBe(200);
    const u = await usage(server, token, '?group=instance');
    const group = u.groups.find((g: any) => g.key === inst.id);
    expect(group.name).toBe('timed');
    expect(-group.credits).toBeGreaterThanOrEqual(2);
    expect(-group.credits).toBeLessThanOrEqual(4);
    expect(group.seconds).toBeGreaterThan(2.5);
    expect(await consistentBalance(server, token)).toBe(100 + group.credits);
    // Stopped: no more debits.
    const after = await consistentBalance(server, token);
    await sleep(1500);
    expect(await consistentBalance(server, token)).toBe(after);
  }, 30_000);

  it('does not meter an instance that is not metered', async () => {
    const { token } = await userWithCredits(server, 'free', 0);
    const inst = await createInstance(server, token, { name: 'free', command: ['sleep', '600'] });
    await waitForState(server, token, inst.id, 'running');
    await sleep(1500);
    expect(await consistentBalance(server, token)).toBe(0);
    await api(server, token, 'DELETE', `/api/v1/instances/${inst.id}`);
  }, 30_000);

  it('stops a metered instance at zero (files kept) and refuses new metered work with 402', async () => {
    const { token } = await userWithCredits(server, 'bea', 2);
    const inst = await createInstance(server, token, {
      name: 'broke',
      shell: 'echo kept > /data/kept.txt; exec sleep 600',
      metered: true,
    });
    const stopped = await waitFor(server, token, inst.id, (i) => i.state === 'stopped', 20_000);
    expect(stopped.lastError).toMatch(/^out of credits/);
    expect(stopped.desiredState).toBe('stopped');
    expect(existsSync(path.join(server.data, 'instances', inst.id, 'data', 'kept.txt'))).toBe(true);
    // Never below zero: what ran past the balance (the stop itself) is not charged.
    expect(await consistentBalance(server, token)).toBe(0);

    const start = await api(server, token, 'POST', `/api/v1/instances/${inst.id}/start`);
    expect(start.status).toBe(402);
    expect(start.body.error.code).toBe('out_of_credits');
    const create = await api(server, token, 'POST', '/api/v1/instances', { name: 'another', command: ['sleep', '1'], metered: true });
    expect(create.status).toBe(402);
    expect(create.body.error.code).toBe('out_of_credits');
    const job = await api(server, token, 'POST', '/api/v1/jobs', { runtime: 'sh', entry: 'true' });
    expect(job.status).toBe(402);
    expect(job.body.error).toMatchObject({ code: 'out_of_credits', message: expect.stringContaining('job') });
    // Work that is not metered still runs.
    expect((await api(server, token, 'POST', '/api/v1/instances', { name: 'unmetered', command: ['sleep', '1'] })).status).toBe(201);

    // An admin's grant lets it start again.
    await grant(server, 'bea', 100);
    const again = await api(server, token, 'POST', `/api/v1/instances/${inst.id}/start`);
    expect(again.status).toBe(200);
    await waitForState(server, token, inst.id, 'running');
    await api(server, token, 'DELETE', `/api/v1/instances/${inst.id}`);
  }, 40_000);

  it('tops a user up once with the credits a token carries, even when first used by many requests at once', async () => {
    const { token, id } = await userWithCredits(server, 'cy', 5);
    const user = await server.corral.accounts.users.get('cy');
    expect(user.id).toBe(id);
    const { token: carrying } = await server.corral.accounts.tokens.create(user, { name: 'with-credits', credits: 40 });
    const first = await Promise.all(Array.from({ length: 5 }, () => api(server, carrying, 'GET', '/api/v1/me')));
    for (const r of first) expect(r.status).toBe(200);
    expect((await api(server, carrying, 'GET', '/api/v1/me')).body.user.credits).toBe(45);
    expect(await consistentBalance(server, token)).toBe(45);
    const rows = (await usage(server, token)).records.filter((r: any) => r.kind === 'token');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ credits: 40, what: 'with-credits' });
  });

  it('never lets many concurrent jobs drive a balance below zero by more than one interval', async () => {
    const { token } = await userWithCredits(server, 'dee', 6);
    const results = await Promise.all(
      Array.from({ length: 10 }, () => api(server, token, 'POST', '/api/v1/jobs', { runtime: 'sh', entry: 'sleep 1.5', timeoutSeconds: 3 })),
    );
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(2);
    expect(statuses.filter((s) => s === 402).length).toBeGreaterThanOrEqual(1);
    for (const r of results.filter((x) => x.status === 402)) expect(r.body.error.code).toBe('out_of_credits');
    const balance = await until(() => consistentBalance(server, token), () => true);
    // One interval's worth: intervalSeconds (1) × creditsPerSecond (1).
    expect(balance).toBeGreaterThanOrEqual(-1);
    const jobRows = (await usage(server, token)).records.filter((r: any) => r.kind === 'job');
    expect(jobRows.length).toBe(statuses.filter((s) => s === 200).length);
    for (const r of jobRows) expect(r.seconds).toBeGreaterThanOrEqual(1);
  }, 60_000);
});

describe('metering to the second', () => {
  let slow: TestServer;
  beforeAll(async () => {
    // Ticks far apart: a stop at zero must not wait for one.
    slow = await startTestServer({ credits: { intervalSeconds: 60 } });
  }, 60_000);
  afterAll(async () => {
    await slow?.stop();
  });

  it('stops a metered instance when its owner\'s balance runs out, not at the next tick, and never below zero', async () => {
    const { token } = await userWithCredits(slow, 'dot', 3);
    const inst = await createInstance(slow, token, { name: 'by-the-second', command: ['sleep', '600'], metered: true, creditsPerSecond: 1 });
    // Well before the first tick (60 s): 3 credits at 1 credit/s last about 3 s.
    const stopped = await waitFor(slow, token, inst.id, (i) => i.state === 'stopped', 30_000);
    expect(stopped.lastError).toMatch(/^out of credits/);
    expect(await consistentBalance(slow, token)).toBe(0);
    const u = await usage(slow, token, '?group=instance');
    const group = u.groups.find((g: any) => g.key === inst.id);
    expect(group.credits).toBe(-3);
    // It ran about the 3 s it could pay for (the stop's own time is not charged).
    expect(group.seconds).toBeGreaterThanOrEqual(2.5);
    expect(group.seconds).toBeLessThan(15);
  }, 60_000);
});
