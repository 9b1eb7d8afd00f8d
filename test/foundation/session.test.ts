import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, api, login, startTestServer, type TestServer } from '../helpers/server.js';

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

describe('password resets', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.stop());

  it("an admin's reset ends the user's login sessions", async () => {
    await api(server, server.adminToken, 'POST', '/api/v1/users', { name: 'mona', password: 'mona-password' });
    const s = await login(server.url, 'mona', 'mona-password');
    expect((await fetch(`${server.url}/api/v1/me`, { headers: { cookie: s.cookie } })).status).toBe(200);
    expect((await api(server, server.adminToken, 'PATCH', '/api/v1/users/mona', { password: 'mona-reset-password' })).status).toBe(200);
    expect((await fetch(`${server.url}/api/v1/me`, { headers: { cookie: s.cookie } })).status).toBe(401);
    await login(server.url, 'mona', 'mona-reset-password');
  });
});
