/** The login and logout forms: CSRF, throttling, same-origin `next`, no-store, landing page. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { safeNext } from '../../src/http/routes/login.js';
import { hostCookie, hostName, proxyWorld, rawRequest, type ProxyWorld } from './fixtures.js';

let w: ProxyWorld;
beforeAll(async () => {
  w = await proxyWorld();
});
afterAll(() => w.close());

/** GETs the form and returns its CSRF cookie and field. */
async function form(next = '/') {
  const res = await fetch(`${w.server.url}/login?next=${encodeURIComponent(next)}`);
  const html = await res.text();
  const csrf = /name="_csrf" value="([^"]+)"/.exec(html)![1]!;
  const cookie = res.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  return { res, html, csrf, cookie };
}

async function submit(fields: Record<string, string>, cookie: string) {
  return fetch(`${w.server.url}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
    body: new URLSearchParams(fields).toString(),
    redirect: 'manual',
  });
}

describe('login form', () => {
  it('renders with no-store and the security headers', async () => {
    const { res, html } = await form();
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(html).toContain('<label for="password">');
  });

  it('logs in, sets a host-only session cookie and redirects to a same-origin next (the instance host handshake)', async () => {
    const next = '/host-login?host=app--alice&next=%2Fx';
    const f = await form(next);
    const res = await submit({ name: 'alice', password: 'alice-password', _csrf: f.csrf, next }, f.cookie);
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe(next);
    const session = res.headers.getSetCookie().find((c) => c.startsWith('corral_session='))!;
    expect(session).toMatch(/HttpOnly/i);
    expect(session).toMatch(/SameSite=Lax/i);
    // No Domain attribute: browsers send it to the main host only, never to instance hosts.
    expect(session).not.toMatch(/domain=/i);
    const handshake = await rawRequest(w.server.url, next, { cookie: session.split(';')[0]! });
    expect(handshake.status).toBe(302);
    expect(handshake.headers.location).toMatch(/^http:\/\/app--alice\.corral\.test:\d+\/_corral\/callback\?code=/);
  });

  it('refuses a post without the matching CSRF cookie', async () => {
    const f = await form();
    const res = await submit({ name: 'alice', password: 'alice-password', _csrf: f.csrf }, '');
    expect(res.status).toBe(403);
    expect(res.headers.getSetCookie().some((c) => c.startsWith('corral_session='))).toBe(false);
    const other = await form();
    expect((await submit({ name: 'alice', password: 'alice-password', _csrf: f.csrf }, other.cookie)).status).toBe(403);
  });

  it('rejects unknown form fields', async () => {
    const f = await form();
    expect((await submit({ name: 'alice', password: 'x', _csrf: f.csrf, role: 'admin' }, f.cookie)).status).toBe(400);
  });

  it('takes the user names the API takes (up to 256 characters), and refuses longer ones or control characters with 400', async () => {
    const f = await form();
    const long = await submit({ name: 'u'.repeat(200), password: 'wrong-password', _csrf: f.csrf }, f.cookie);
    expect(long.status).toBe(401);
    for (const name of ['u'.repeat(257), 'bob\u0001', '']) {
      const res = await submit({ name, password: 'wrong-password', _csrf: f.csrf }, f.cookie);
      expect(res.status).toBe(400);
      expect((await res.json()).error.code).toBe('validation_failed');
    }
  });

  it.each(['//evil.com', 'https://evil.com', '/\\evil.com', '/\t/evil.com', 'javascript:alert(1)', 'http://app--alice.corral.test.evil.com/', 'http://corral.test@evil.com/'])(
    'refuses the open redirect next=%s',
    async (next) => {
      expect(safeNext(next, 'corral.test')).toBe('/');
      const { html } = await form(next);
      expect(html).toContain('name="next" value="/"');
    },
  );

  it('keeps a next on an instance host under the base domain', () => {
    expect(safeNext('http://app--alice.corral.test/x', 'corral.test')).toBe('http://app--alice.corral.test/x');
  });
});

describe('logout form and landing page', () => {
  it('logout needs the session CSRF token, then ends the session', async () => {
    const f = await form();
    const res = await submit({ name: 'alice', password: 'alice-password', _csrf: f.csrf }, f.cookie);
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith('corral_session='))!.split(';')[0]!;
    const me = (await (await fetch(`${w.server.url}/api/v1/me`, { headers: { cookie } })).json()) as { csrfToken: string };

    const bad = await fetch(`${w.server.url}/logout`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
      body: '',
      redirect: 'manual',
    });
    expect(bad.status).toBe(403);
    const app = await hostCookie(w.server, cookie, hostName('app', 'alice'));
    expect((await w.onHost(hostName('app', 'alice'), '/', { cookie: app })).status).toBe(200);

    const out = await fetch(`${w.server.url}/logout`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
      body: `_csrf=${encodeURIComponent(me.csrfToken)}`,
      redirect: 'manual',
    });
    expect(out.status).toBe(303);
    expect(out.headers.get('location')).toBe('/login');
    // The logout ends the instance hosts' sessions too, at once.
    expect((await w.onHost(hostName('app', 'alice'), '/', { cookie: app })).status).toBe(401);
  });

  it('/ sends a logged-in user to the dashboard, or to their default instance', async () => {
    expect((await rawRequest(w.server.url, '/', {})).headers.location).toBe('/login');
    expect((await rawRequest(w.server.url, '/', { cookie: w.alice.cookie })).headers.location).toBe('/ui/');
    const put = await fetch(`${w.server.url}/api/v1/proxy/alice/app`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${w.alice.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ default: true }),
    });
    expect(((await put.json()) as { default: boolean }).default).toBe(true);
    const port = new URL(w.server.url).port;
    expect((await rawRequest(w.server.url, '/', { cookie: w.alice.cookie })).headers.location).toBe(`http://app--alice.corral.test:${port}/`);
  });
});

// Last: the failed logins lock out this test's address.
describe('throttling', () => {
  it('says "Invalid credentials" for a wrong password and throttles guessing', async () => {
    const f = await form();
    const res = await submit({ name: 'bob', password: 'wrong-password', _csrf: f.csrf }, f.cookie);
    expect(res.status).toBe(401);
    expect(await res.text()).toContain('Invalid credentials');
    let last = 0;
    for (let i = 0; i < 6; i++) last = (await submit({ name: 'bob', password: 'wrong-password', _csrf: f.csrf }, f.cookie)).status;
    expect(last).toBe(429);
  });
});
