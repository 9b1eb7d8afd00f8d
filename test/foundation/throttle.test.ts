/**
 * Failed logins are throttled per (user, address), per address and per user, counted before
 * the password is verified, and kept in the store. Each "client" connects from its own
 * loopback address (127.0.0.2, 127.0.0.3, …: all of 127/8 is local on Linux).
 */
import { rm } from 'node:fs/promises';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addressKey, LoginThrottle } from '../../src/core/accounts/throttle.js';
import { Store } from '../../src/store/index.js';
import { ADMIN_PASSWORD, api, createToken, login, spawnServer, startTestServer, tempDir, type TestServer } from '../helpers/server.js';

// Per (user, address) 3; per address 6; per user 5 (the per-user limit is set apart so a test
// can tell the three limits apart).
const AUTH = { loginMaxFailures: 3, loginMaxFailuresPerAddress: 6, loginMaxFailuresPerUser: 5, loginLockSeconds: 30 };

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ auth: AUTH });
  for (const name of ['ivan', 'judy', 'ken', 'alice', 'bob', 'carol', 'leo', 'olga']) {
    const res = await api(server, server.adminToken, 'POST', '/api/v1/users', { name, password: `${name}-password` });
    expect(res.status).toBe(201);
  }
});
const agents = new Map<string, Agent>();
afterAll(async () => {
  await Promise.all([...agents.values()].map((a) => a.close()));
  await server?.stop();
});

async function loginFrom(address: string, name: string, password: string, url = server.url) {
  const agent = agents.get(address) ?? new Agent({ localAddress: address });
  agents.set(address, agent);
  const res = await request(`${url}/api/v1/login`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, password }),
  });
  const body = (await res.body.json()) as { error?: { code: string; message: string } };
  return { status: res.statusCode, retryAfter: res.headers['retry-after'], code: body.error?.code, message: body.error?.message };
}

describe('login throttling', () => {
  it('one user’s typos lock that user on that address only: others behind the same address still log in', async () => {
    for (let i = 0; i < 3; i++) expect((await loginFrom('127.0.0.20', 'alice', 'wrong-password')).status).toBe(401);
    const locked = await loginFrom('127.0.0.20', 'alice', 'alice-password');
    expect(locked.status).toBe(429);
    expect(locked.code).toBe('too_many_attempts');
    const retry = Number(locked.retryAfter);
    expect(retry).toBeGreaterThan(0);
    expect(retry).toBeLessThanOrEqual(30);
    expect((await loginFrom('127.0.0.20', 'bob', 'bob-password')).status).toBe(200);
    expect((await loginFrom('127.0.0.20', 'admin', ADMIN_PASSWORD)).status).toBe(200);
    // alice from another address is not locked either (2 failures from there would not lock her).
    expect((await loginFrom('127.0.0.21', 'alice', 'alice-password')).status).toBe(200);
  });

  it('60 concurrent guesses: at most the limit are verified, and the right password among them is refused too', async () => {
    const tries = Array.from({ length: 60 }, (_, i) => loginFrom('127.0.0.22', 'carol', i === 44 ? 'carol-password' : `guess-${i}-xyz`));
    const results = await Promise.all(tries);
    const count = (s: number) => results.filter((r) => r.status === s).length;
    // A 401 is a verified wrong password; nothing beyond the limit got that far.
    expect(count(401)).toBeLessThanOrEqual(AUTH.loginMaxFailures);
    expect(count(200)).toBe(0);
    expect(results[44]!.status).toBe(429);
    expect(count(429)).toBe(60 - count(401));
    for (const r of results.filter((x) => x.status === 429)) expect(Number(r.retryAfter)).toBeGreaterThan(0);
    // And after the burst, carol on that address is locked.
    expect((await loginFrom('127.0.0.22', 'carol', 'carol-password')).status).toBe(429);
  });

  it('locks an address guessing at many names (the looser per-address limit), and only that address', async () => {
    const names = ['nobody1', 'nobody2', 'nobody3', 'nobody4', 'ken', 'nobody5'];
    for (const name of names) expect((await loginFrom('127.0.0.4', name, 'wrong-password')).status).toBe(401);
    const locked = await loginFrom('127.0.0.4', 'judy', 'judy-password');
    expect(locked.status).toBe(429);
    expect(Number(locked.retryAfter)).toBeGreaterThan(0);
    expect((await loginFrom('127.0.0.5', 'judy', 'judy-password')).status).toBe(200);
  });

  it('locks a user guessed at from many addresses (the per-user limit), and says nothing of whether the user exists', async () => {
    for (let i = 0; i < 5; i++) expect((await loginFrom(`127.0.1.${i + 1}`, 'ivan', 'wrong-password')).status).toBe(401);
    const locked = await loginFrom('127.0.1.99', 'ivan', 'ivan-password');
    expect(locked.status).toBe(429);
    // The same for a name that does not exist: same status, code and message shape.
    for (let i = 0; i < 5; i++) expect((await loginFrom(`127.0.2.${i + 1}`, 'ghost', 'wrong-password')).status).toBe(401);
    const ghost = await loginFrom('127.0.2.99', 'ghost', 'any-password');
    expect(ghost.status).toBe(429);
    expect(ghost.code).toBe(locked.code);
    expect(ghost.message!.replace(/\d+/g, 'N')).toBe(locked.message!.replace(/\d+/g, 'N'));
  });

  it('forgets a user’s failures after a successful login', async () => {
    for (let i = 0; i < 2; i++) expect((await loginFrom('127.0.0.6', 'judy', 'wrong-password')).status).toBe(401);
    expect((await loginFrom('127.0.0.6', 'judy', 'judy-password')).status).toBe(200);
    // Two more failures would lock judy on this address had the count not been reset.
    for (let i = 0; i < 2; i++) expect((await loginFrom('127.0.0.6', 'judy', 'wrong-password')).status).toBe(401);
    expect((await loginFrom('127.0.0.6', 'judy', 'judy-password')).status).toBe(200);
  });

  it('throttles the login form the same way', async () => {
    const agent = new Agent({ localAddress: '127.0.0.23' });
    agents.set('127.0.0.23-form', agent);
    const form = async (password: string) => {
      const page = await request(`${server.url}/login`, { dispatcher: agent });
      const csrf = /name="_csrf" value="([^"]+)"/.exec(await page.body.text())![1]!;
      const cookie = String(page.headers['set-cookie']).split(';')[0]!;
      const res = await request(`${server.url}/login`, {
        method: 'POST',
        dispatcher: agent,
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
        body: new URLSearchParams({ name: 'olga', password, _csrf: csrf }).toString(),
      });
      await res.body.dump();
      return res;
    };
    for (let i = 0; i < 3; i++) expect((await form('wrong-password')).statusCode).toBe(401);
    const locked = await form('olga-password');
    expect(locked.statusCode).toBe(429);
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
  });
});

describe('lock-outs in the store', () => {
  it('survive a restart, even after SIGKILL', async () => {
    const data = await tempDir();
    const env = { CORRAL_AUTH__LOGIN_MAX_FAILURES: '3' };
    const first = await spawnServer(data, env);
    try {
      const admin = await createToken(first.url, await login(first.url, 'admin', ADMIN_PASSWORD), 'admin');
      expect((await api(first, admin, 'POST', '/api/v1/users', { name: 'pat', password: 'pat-password' })).status).toBe(201);
      for (let i = 0; i < 3; i++) expect((await loginFrom('127.0.0.30', 'pat', 'wrong-password', first.url)).status).toBe(401);
      expect((await loginFrom('127.0.0.30', 'pat', 'pat-password', first.url)).status).toBe(429);
    } finally {
      await first.kill('SIGKILL');
    }
    const second = await spawnServer(data, env);
    try {
      const after = await loginFrom('127.0.0.30', 'pat', 'pat-password', second.url);
      expect(after.status).toBe(429);
      expect(Number(after.retryAfter)).toBeGreaterThan(0);
      expect((await loginFrom('127.0.0.31', 'pat', 'pat-password', second.url)).status).toBe(200);
    } finally {
      await second.kill();
      await rm(data, { recursive: true, force: true });
    }
  }, 120_000); // two server starts and a dozen password hashes: over 30 s on a busy machine
});

describe('LoginThrottle timing', () => {
  it('forgets failures older than the window, and doubles successive locks', async () => {
    const dir = await tempDir('corral-throttle-');
    const store = await Store.open(dir);
    try {
      let now = 1_000_000_000;
      const t = new LoginThrottle(store.loginThrottle, { perPair: 3, perAddress: 100, perSubject: 100, lockSeconds: 10 }, () => now);
      const fail = () => t.attempt('login:u', 'a', async () => false);
      const waitFor = (subject = 'login:u', address = 'a') => t.retryAfter(subject, address);
      await fail();
      await fail();
      now += 16 * 60_000; // two old failures, then one new: no lock
      await fail();
      expect(await waitFor()).toBe(0);
      await fail();
      await fail();
      expect(await waitFor()).toBe(10);
      await expect(t.attempt('login:u', 'a', async () => true)).rejects.toMatchObject({ status: 429, headers: { 'retry-after': '10' } });
      now += 10_001;
      expect(await t.attempt('login:u', 'a', async () => false)).toBe(false);
      await fail();
      await fail();
      expect(await waitFor()).toBe(20); // the second lock-out lasts twice as long
      expect(await waitFor('login:u', 'b')).toBe(0); // another address is another pair
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('limits IPv6 clients by their /64', () => {
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8:1:2:bbbb:cccc:dddd:eeee')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('::ffff:127.0.0.2')).toBe('127.0.0.2');
    expect(addressKey('127.0.0.2')).toBe('127.0.0.2');
  });
});

describe('changing one’s own password', () => {
  it('counts wrong current passwords towards the lock-out', async () => {
    const leo = await createToken(server.url, await login(server.url, 'leo', 'leo-password'), 'leo');
    for (let i = 0; i < 3; i++) {
      expect((await api(server, leo, 'PUT', '/api/v1/me/password', { current: 'guess-number-x', password: 'new-password-1' })).status).toBe(401);
    }
    const locked = await api(server, leo, 'PUT', '/api/v1/me/password', { current: 'leo-password', password: 'new-password-1' });
    expect(locked.status).toBe(429);
    expect(locked.headers.get('retry-after')).toMatch(/^\d+$/);
  });
});
