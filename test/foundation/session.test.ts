import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config.js';
import { isCorralError } from '../../src/core/errors.js';
import { startServer } from '../../src/server.js';
import { ADMIN_PASSWORD, api, createToken, login, startTestServer, tempDir, type TestServer } from '../helpers/server.js';

describe('login sessions', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.stop());

  it('logs in with a password and sets an HttpOnly SameSite=Lax cookie', async () => {
    const res = await fetch(`${server.url}/api/v1/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'admin', password: ADMIN_PASSWORD }),
    });
    expect(res.status).toBe(200);
    const cookie = res.headers.getSetCookie()[0]!;
    expect(cookie).toMatch(/^corral_session=/);
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Lax/i);
    const body = (await res.json()) as { user: { name: string; role: string }; csrfToken: string };
    expect(body.user).toMatchObject({ name: 'admin', role: 'admin' });
    expect(body.csrfToken.length).toBeGreaterThan(20);
  });

  it('accepts a form-encoded login', async () => {
    const res = await fetch(`${server.url}/api/v1/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ name: 'admin', password: ADMIN_PASSWORD }),
    });
    expect(res.status).toBe(200);
  });

  it('refuses a wrong password with 401', async () => {
    const res = await api(server, undefined, 'POST', '/api/v1/login', { name: 'admin', password: 'wrong-password' });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('bad_credentials');
  });

  it('needs the CSRF token for state changes made with the cookie', async () => {
    const s = await login(server.url, 'admin', ADMIN_PASSWORD);
    const without = await fetch(`${server.url}/api/v1/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie: s.cookie },
      body: JSON.stringify({ name: 'no-csrf' }),
    });
    expect(without.status).toBe(403);
    expect(((await without.json()) as { error: { code: string } }).error.code).toBe('csrf_token_invalid');
    const withIt = await fetch(`${server.url}/api/v1/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie: s.cookie, 'x-csrf-token': s.csrfToken },
      body: JSON.stringify({ name: 'with-csrf' }),
    });
    expect(withIt.status).toBe(201);
  });

  it('refuses a wrong CSRF token and accepts one sent as a form field', async () => {
    const s = await login(server.url, 'admin', ADMIN_PASSWORD);
    const wrong = await fetch(`${server.url}/api/v1/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie: s.cookie, 'x-csrf-token': `${s.csrfToken.slice(0, -2)}xx` },
      body: JSON.stringify({ name: 'wrong-csrf' }),
    });
    expect(wrong.status).toBe(403);
    const form = await fetch(`${server.url}/api/v1/logout`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: s.cookie },
      body: new URLSearchParams({ _csrf: s.csrfToken }),
    });
    expect(form.status).toBe(204);
    expect((await fetch(`${server.url}/api/v1/me`, { headers: { cookie: s.cookie } })).status).toBe(401);
  });

  it('does not ask for a CSRF token from bearer-token clients', async () => {
    const res = await api(server, server.adminToken, 'POST', '/api/v1/tokens', { name: 'bearer-no-csrf' });
    expect(res.status).toBe(201);
  });

  it('ends the session on logout', async () => {
    const s = await login(server.url, 'admin', ADMIN_PASSWORD);
    const me = await fetch(`${server.url}/api/v1/me`, { headers: { cookie: s.cookie } });
    expect(me.status).toBe(200);
    const out = await fetch(`${server.url}/api/v1/logout`, {
      method: 'POST',
      headers: { cookie: s.cookie, 'x-csrf-token': s.csrfToken },
    });
    expect(out.status).toBe(204);
    const after = await fetch(`${server.url}/api/v1/me`, { headers: { cookie: s.cookie } });
    expect(after.status).toBe(401);
  });
});

describe('login CSRF', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.stop());

  const apiLogin = (headers: Record<string, string>) =>
    fetch(`${server.url}/api/v1/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams({ name: 'admin', password: ADMIN_PASSWORD }),
    });

  it('refuses a login posted by a page of another origin or of an instance host (403)', async () => {
    const attacks: Record<string, string>[] = [
      { origin: 'https://evil.example' },
      { origin: 'null' },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site', origin: 'http://app.localhost' },
    ];
    for (const headers of attacks) {
      const res = await apiLogin(headers);
      expect(res.status, JSON.stringify(headers)).toBe(403);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('forbidden');
      expect(res.headers.getSetCookie()).toEqual([]);
    }
  });

  it('accepts a same-origin login and one from a client that is not a browser (no Origin)', async () => {
    const host = new URL(server.url).host;
    expect((await apiLogin({ origin: server.url })).status).toBe(200);
    expect((await apiLogin({ origin: `http://${host}`, 'sec-fetch-site': 'same-origin' })).status).toBe(200);
    expect((await apiLogin({})).status).toBe(200);
  });

  it('refuses a cross-origin post of the login form too', async () => {
    const page = await fetch(`${server.url}/login`);
    const csrf = /name="_csrf" value="([^"]+)"/.exec(await page.text())![1]!;
    const cookie = page.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    const post = (headers: Record<string, string>) =>
      fetch(`${server.url}/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie, ...headers },
        body: new URLSearchParams({ name: 'admin', password: ADMIN_PASSWORD, _csrf: csrf }),
      });
    const evil = await post({ origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' });
    expect(evil.status).toBe(403);
    expect(evil.headers.getSetCookie().some((c) => c.startsWith('corral_session='))).toBe(false);
    const same = await post({ origin: server.url, 'sec-fetch-site': 'same-origin' });
    expect(same.status).toBe(302);
    expect(same.headers.getSetCookie().some((c) => c.startsWith('corral_session='))).toBe(true);
  });
});

describe('password changes', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.stop());

  const me = (credential: { cookie?: string; token?: string }) =>
    fetch(`${server.url}/api/v1/me`, {
      headers: credential.token ? { authorization: `Bearer ${credential.token}` } : { cookie: credential.cookie! },
    }).then((r) => r.status);

  it("an admin's reset ends the user's login sessions and tokens", async () => {
    await api(server, server.adminToken, 'POST', '/api/v1/users', { name: 'mona', password: 'mona-password' });
    const s = await login(server.url, 'mona', 'mona-password');
    const token = await createToken(server.url, s, 'mona-token');
    expect(await me(s)).toBe(200);
    expect(await me({ token })).toBe(200);
    expect((await api(server, server.adminToken, 'PATCH', '/api/v1/users/mona', { password: 'mona-reset-password' })).status).toBe(200);
    expect(await me(s)).toBe(401);
    expect(await me({ token })).toBe(401);
    await login(server.url, 'mona', 'mona-reset-password');
  });

  it('a token without account:write cannot change the password (403 naming the scope); one with it can', async () => {
    await api(server, server.adminToken, 'POST', '/api/v1/users', { name: 'nina', password: 'nina-password' });
    const s = await login(server.url, 'nina', 'nina-password');
    const jobsOnly = await createToken(server.url, s, 'jobs-only', ['jobs:read']);
    const refused = await api(server, jobsOnly, 'PUT', '/api/v1/me/password', { current: 'nina-password', password: 'nina-taken-over-pw' });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('forbidden');
    expect(refused.body.error.message).toContain('account:write');
    await login(server.url, 'nina', 'nina-password'); // unchanged

    const account = await createToken(server.url, s, 'account', ['account:write']);
    const changed = await api(server, account, 'PUT', '/api/v1/me/password', { current: 'nina-password', password: 'nina-second-pw' });
    expect(changed.status).toBe(204);
    await login(server.url, 'nina', 'nina-second-pw');
  });

  it("changing one's password ends every other session and token; the one used keeps working", async () => {
    await api(server, server.adminToken, 'POST', '/api/v1/users', { name: 'otto', password: 'otto-password' });
    const used = await login(server.url, 'otto', 'otto-password');
    const other = await login(server.url, 'otto', 'otto-password');
    const token = await createToken(server.url, other, 'otto-token');
    const res = await fetch(`${server.url}/api/v1/me/password`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', cookie: used.cookie, 'x-csrf-token': used.csrfToken },
      body: JSON.stringify({ current: 'otto-password', password: 'otto-next-password' }),
    });
    expect(res.status).toBe(204);
    expect(await me(used)).toBe(200);
    expect(await me(other)).toBe(401);
    expect(await me({ token })).toBe(401);

    // Changed with a token: that token stays, the others and every session end.
    const s = await login(server.url, 'otto', 'otto-next-password');
    const caller = await createToken(server.url, s, 'caller');
    const bystander = await createToken(server.url, s, 'bystander');
    const viaToken = await api(server, caller, 'PUT', '/api/v1/me/password', { current: 'otto-next-password', password: 'otto-third-password' });
    expect(viaToken.status).toBe(204);
    expect(await me({ token: caller })).toBe(200);
    expect(await me({ token: bystander })).toBe(401);
    expect(await me(s)).toBe(401);
  });
});

describe('password rules', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.stop());

  const WEAK = ['password', '12345678', 'qwertyui', 'Password1', 'iloveyou1', 'aaaaaaaaaa', 'abcdefgh', 'corral', 'Corral2024!', 'walter', 'walter-1234'];

  it('refuses common, breached, repeated and sequential passwords, the user name and "corral" with 400 naming the field', async () => {
    for (const password of WEAK.filter((p) => p.length >= 8)) {
      const res = await api(server, server.adminToken, 'POST', '/api/v1/users', { name: 'walter', password });
      expect(res.status, password).toBe(400);
      expect(res.body.error.code).toBe('weak_password');
      expect(res.body.error.field).toBe('password');
      expect(res.body.error.message).toMatch(/^body\.password: /);
    }
    expect((await api(server, server.adminToken, 'GET', '/api/v1/users/walter')).status).toBe(404);
    const ok = await api(server, server.adminToken, 'POST', '/api/v1/users', { name: 'walter', password: 'walter-long-horse-battery' });
    expect(ok.status).toBe(201);
  });

  it('applies to a password change and an admin reset', async () => {
    const s = await login(server.url, 'walter', 'walter-long-horse-battery');
    const change = await fetch(`${server.url}/api/v1/me/password`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', cookie: s.cookie, 'x-csrf-token': s.csrfToken },
      body: JSON.stringify({ current: 'walter-long-horse-battery', password: 'qwertyui' }),
    });
    expect(change.status).toBe(400);
    expect(((await change.json()) as { error: { code: string; field: string } }).error).toMatchObject({ code: 'weak_password', field: 'password' });
    const reset = await api(server, server.adminToken, 'PATCH', '/api/v1/users/walter', { password: '12345678' });
    expect(reset.status).toBe(400);
    expect(reset.body.error).toMatchObject({ code: 'weak_password', field: 'password' });
    await login(server.url, 'walter', 'walter-long-horse-battery'); // unchanged
  });

  it('a weak first-admin password stops the first start with a clear error', async () => {
    const data = await tempDir();
    try {
      const config = loadConfig({ env: {}, flags: { host: '127.0.0.1', port: 0, logLevel: 'silent', data, adminPassword: 'password1' } });
      const outcome = await startServer(config).then(
        async (started) => (await started.close(), 'started'),
        (e: unknown) => (isCorralError(e) ? `${e.code}: ${e.message}` : String(e)),
      );
      expect(outcome).toMatch(/^config_invalid: adminPassword .*common/);
    } finally {
      await rm(data, { recursive: true, force: true });
    }
  });
});
