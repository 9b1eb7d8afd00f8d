/**
 * Failed logins are throttled per user name and per client address. Each "client" connects
 * from its own loopback address (127.0.0.2, 127.0.0.3, …: all of 127/8 is local on Linux).
 */
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoginThrottle } from '../../src/core/accounts/throttle.js';
import { api, createToken, login, startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ auth: { loginMaxFailures: 3, loginLockSeconds: 30 } });
  for (const name of ['ivan', 'judy', 'ken']) {
    await api(server, server.adminToken, 'POST', '/api/v1/users', { name, password: `${name}-password` });
  }
});
const agents = new Map<string, Agent>();
afterAll(async () => {
  await Promise.all([...agents.values()].map((a) => a.close()));
  await server.stop();
});
async function loginFrom(address: string, name: string, password: string) {
  const agent = agents.get(address) ?? new Agent({ localAddress: address });
  agents.set(address, agent);
  const res = await request(`${server.url}/api/v1/login`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, password }),
  });
  const body = (await res.body.json()) as { error?: { code: string } };
  return { status: res.statusCode, retryAfter: res.headers['retry-after'], code: body.error?.code };
}

describe('login throttling', () => {
  it('locks a user name after too many failures, whatever address they come from', async () => {
    for (let i = 0; i < 3; i++) expect((await loginFrom('127.0.0.2', 'ivan', 'wrong-password')).status).toBe(401);
    const locked = await loginFrom('127.0.0.3', 'ivan', 'ivan-password');
    expect(locked.status).toBe(429);
    expect(locked.code).toBe('too_many_attempts');
    const retry = Number(locked.retryAfter);
    expect(retry).toBeGreaterThan(0);
    expect(retry).toBeLessThanOrEqual(30);
    // Another user from a clean address is not affected.
    expect((await loginFrom('127.0.0.3', 'judy', 'judy-password')).status).toBe(200);
  });

  it('locks an address guessing at many names, and only that address', async () => {
    const names = ['nobody1', 'nobody2', 'ken'];
    for (const name of names) expect((await loginFrom('127.0.0.4', name, 'wrong-password')).status).toBe(401);
    const locked = await loginFrom('127.0.0.4', 'judy', 'judy-password');
    expect(locked.status).toBe(429);
    expect(Number(locked.retryAfter)).toBeGreaterThan(0);
    expect((await loginFrom('127.0.0.5', 'judy', 'judy-password')).status).toBe(200);
  });

  it('forgets a user name’s failures after a successful login', async () => {
    for (let i = 0; i < 2; i++) expect((await loginFrom('127.0.0.6', 'judy', 'wrong-password')).status).toBe(401);
    expect((await loginFrom('127.0.0.7', 'judy', 'judy-password')).status).toBe(200);
    // Two more failures from a third address would lock judy had the count not been reset.
    for (let i = 0; i < 2; i++) expect((await loginFrom('127.0.0.8', 'judy', 'wrong-password')).status).toBe(401);
    expect((await loginFrom('127.0.0.9', 'judy', 'judy-password')).status).toBe(200);
  });
});

describe('LoginThrottle timing', () => {
  it('forgets failures older than the window, and doubles successive locks', () => {
    let now = 1_000_000;
    const t = new LoginThrottle(3, 10, () => now);
    t.failed('u', 'a');
    t.failed('u', 'a');
    now += 16 * 60_000; // two old failures, then one new: no lock
    t.failed('u', 'a');
    expect(() => t.check('u', 'a')).not.toThrow();
    t.failed('u', 'a');
    t.failed('u', 'a');
    expect(() => t.check('u', 'a')).toThrow(expect.objectContaining({ status: 429, headers: { 'retry-after': '10' } }));
    now += 10_001;
    expect(() => t.check('u', 'a')).not.toThrow();
    for (let i = 0; i < 3; i++) t.failed('u', 'b');
    expect(() => t.check('u', 'c')).toThrow(expect.objectContaining({ headers: { 'retry-after': '20' } }));
  });
});

describe('changing one’s own password', () => {
  it('counts wrong current passwords towards the lock-out', async () => {
    expect((await api(server, server.adminToken, 'POST', '/api/v1/users', { name: 'leo', password: 'leo-password' })).status).toBe(201);
    const leo = await createToken(server.url, await login(server.url, 'leo', 'leo-password'), 'leo');
    for (let i = 0; i < 3; i++) {
      expect((await api(server, leo, 'PUT', '/api/v1/me/password', { current: 'guess-number-x', password: 'new-password-1' })).status).toBe(401);
    }
    const locked = await api(server, leo, 'PUT', '/api/v1/me/password', { current: 'leo-password', password: 'new-password-1' });
    expect(locked.status).toBe(429);
    expect(locked.headers.get('retry-after')).toMatch(/^\d+$/);
  });
});
