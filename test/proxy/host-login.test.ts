/**
 * The handshake that logs a browser in to an instance host: a one-time code from the main
 * origin (single use, 60 s, bound to its host), a host cookie good on its own host only and
 * ended by logout, no code for a user without access, no open redirect; and the Fetch
 * Metadata and Origin checks that keep one origin's pages from using another's cookie.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { login } from '../helpers/server.js';
import { hostCookie, hostName, proxyWorld, rawRequest, type ProxyWorld } from './fixtures.js';

let w: ProxyWorld;
const APP = hostName('app', 'alice');
const OTHER = hostName('other', 'alice');
beforeAll(async () => {
  w = await proxyWorld({ authCacheMs: 0 });
  w.targets.add({ owner: 'alice', ownerId: w.alice.id, name: 'other', ports: [{ name: 'http', port: w.echo.port }] });
});
afterAll(() => w.close());
afterEach(() => vi.useRealTimers());

/** The main origin's answer to /host-login: the callback URL with its code. */
async function mint(label: string, cookie = w.alice.cookie, next = '/') {
  const r = await rawRequest(w.server.url, `/host-login?host=${label}&next=${encodeURIComponent(next)}`, { cookie });
  expect(r.status).toBe(302);
  return new URL(r.headers.location!);
}
const callback = (to: URL, host = to.host) => rawRequest(w.server.url, to.pathname + to.search, { host, accept: 'text/html' });

describe('the one-time code', () => {
  it('is exchanged once for a host-only, HttpOnly, SameSite=Lax cookie, then lands on next', async () => {
    const to = await mint('app--alice', w.alice.cookie, '/deep/page?q=1');
    expect(to.host).toBe(`${APP}:${new URL(w.server.url).port}`);
    expect(to.pathname).toBe('/_corral/callback');
    const first = await callback(to);
    expect(first.status).toBe(302);
    expect(first.headers.location).toBe('/deep/page?q=1');
    const set = first.headers['set-cookie']![0]!;
    expect(set).toMatch(/^corral_host=[\w-]{43}; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Lax$/);
    expect(set).not.toMatch(/domain=/i);
    expect((await w.onHost(APP, '/', { cookie: set.split(';')[0]! })).status).toBe(200);

    const again = await callback(to);
    expect(again.status).toBe(400);
    expect(again.headers['set-cookie']).toBeUndefined();
    expect(again.body).toContain('Login link not valid');
  });

  it('expires after 60 s', async () => {
    const to = await mint('app--alice');
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 61_000 });
    const late = await callback(to);
    expect(late.status).toBe(400);
    expect(late.headers['set-cookie']).toBeUndefined();
  });

  it('is bound to its host: presented on another instance host it is refused, and burnt', async () => {
    const to = await mint('app--alice');
    const elsewhere = await callback(to, OTHER);
    expect(elsewhere.status).toBe(400);
    expect(elsewhere.headers['set-cookie']).toBeUndefined();
    expect((await callback(to)).status).toBe(400);
  });

  it('is not given to a user who may not reach the instance: 404, no code, the same as for no instance', async () => {
    const denied = await rawRequest(w.server.url, '/host-login?host=app--alice', { cookie: w.bob.cookie });
    const missing = await rawRequest(w.server.url, '/host-login?host=nothing--alice', { cookie: w.bob.cookie });
    expect(denied.status).toBe(404);
    expect(denied.headers.location).toBeUndefined();
    expect(JSON.parse(denied.body).error.code).toBe('instance_not_found');
    expect(missing.status).toBe(404);
  });

  it('sends a browser without a main session to the login form first, and back', async () => {
    const r = await rawRequest(w.server.url, '/host-login?host=app--alice&next=%2Fx');
    expect(r.status).toBe(302);
    expect(r.headers.location).toBe(`/login?next=${encodeURIComponent('/host-login?host=app--alice&next=%2Fx')}`);
    // A token is no main session: it never gets a code either.
    const token = await rawRequest(w.server.url, `/host-login?host=app--alice&token=${w.alice.token}`);
    expect(token.status).toBe(400); // unknown query parameter
  });

  it('is only handed to a top-level navigation, not to a script', async () => {
    const r = await rawRequest(w.server.url, '/host-login?host=app--alice', { cookie: w.alice.cookie, 'sec-fetch-mode': 'cors' });
    expect(r.status).toBe(403);
    expect(r.headers.location).toBeUndefined();
  });
});

describe('bad input', () => {
  it.each(['', 'nolabel', 'a--b--c--d', 'App--alice', 'app--alice.evil.com', 'x'.repeat(64), 'app--al%2Fice'])(
    'refuses host=%s without a redirect',
    async (label) => {
      const r = await rawRequest(w.server.url, `/host-login?host=${label}`, { cookie: w.alice.cookie });
      expect([400, 404]).toContain(r.status);
      expect(r.headers.location).toBeUndefined();
      expect(JSON.parse(r.body).error.code).toBeTruthy();
    },
  );

  it.each(['//evil.com/x', 'https://evil.com/', '/\\evil.com', '/\t/evil.com', 'http://app--alice.corral.test.evil.com/'])(
    'lands on the host root, never off-site, for next=%s',
    async (next) => {
      const to = await mint('app--alice', w.alice.cookie, next);
      expect(to.hostname).toBe(APP);
      expect((await callback(to)).headers.location).toBe('/');
    },
  );

  it('answers a callback without a code, with a bogus one, or on an unknown reserved path with a clear error', async () => {
    for (const path of ['/_corral/callback', '/_corral/callback?code=', `/_corral/callback?code=${'A'.repeat(43)}`, `/_corral/callback?code=${'A'.repeat(500)}`]) {
      const r = await w.onHost(APP, path, { cookie: w.aliceApp });
      expect(r.status).toBe(400);
      expect(JSON.parse(r.body).error.code).toBe('host_login_invalid');
    }
    expect((await w.onHost(APP, '/_corral/other', { cookie: w.aliceApp })).status).toBe(404);
    expect((await w.onHost(APP, '/_corral/callback?code=x', { cookie: w.aliceApp }, 'POST')).status).toBe(404);
  });
});

describe('the host cookie', () => {
  it('is refused on any other host', async () => {
    expect((await w.onHost(OTHER, '/', { cookie: w.aliceApp })).status).toBe(401);
    expect((await w.onHost(hostName('app', 'alice', 'http'), '/', { cookie: w.aliceApp })).status).toBe(401);
  });

  it('never reaches the app, nor does the session cookie', async () => {
    const r = await w.onHost(APP, '/', { cookie: `a=1; ${w.aliceApp}; ${w.alice.cookie}` });
    const seen = JSON.parse(r.body) as { headers: Record<string, string> };
    expect(seen.headers.cookie).toBe('a=1');
    expect(r.body).not.toContain(w.aliceApp.split('=')[1]);
  });

  it('ends with its main session: logout through the API', async () => {
    const s = await login(w.server.url, 'alice', 'alice-password');
    const cookie = await hostCookie(w.server, s.cookie, APP);
    expect((await w.onHost(APP, '/', { cookie })).status).toBe(200);
    const out = await fetch(`${w.server.url}/api/v1/logout`, { method: 'POST', headers: { cookie: s.cookie, 'x-csrf-token': s.csrfToken } });
    expect(out.status).toBe(204);
    expect((await w.onHost(APP, '/', { cookie })).status).toBe(401);
  });
});

describe('Fetch Metadata on instance hosts', () => {
  const from = (site: string, mode: string, dest: string) => ({ cookie: w.aliceApp, 'sec-fetch-site': site, 'sec-fetch-mode': mode, 'sec-fetch-dest': dest });

  it("lets another site's page navigate here, but not read, post or open a WebSocket with the cookie", async () => {
    expect((await w.onHost(APP, '/', from('same-site', 'navigate', 'document'))).status).toBe(200);
    expect((await w.onHost(APP, '/', from('cross-site', 'navigate', 'document'))).status).toBe(200);
    expect((await w.onHost(APP, '/', from('same-origin', 'cors', 'empty'))).status).toBe(200);
    for (const site of ['same-site', 'cross-site']) {
      const read = await w.onHost(APP, '/', from(site, 'cors', 'empty'));
      expect(read.status).toBe(403);
      expect(JSON.parse(read.body).error.code).toBe('cross_site_refused');
      expect((await w.onHost(APP, '/', from(site, 'no-cors', 'image'))).status).toBe(403);
      expect((await w.onHost(APP, '/', from(site, 'navigate', 'iframe'))).status).toBe(403);
      expect((await w.onHost(APP, '/', from(site, 'navigate', 'document'), 'POST')).status).toBe(403);
    }
    const ws = await new Promise<number>((resolve) => {
      const s = new WebSocket(`${w.server.url.replace(/^http/, 'ws')}/ws`, { headers: { host: APP, cookie: w.aliceApp, origin: `http://${OTHER}` } });
      s.once('unexpected-response', (_q, res) => resolve(res.statusCode!));
      s.once('open', () => resolve(101));
    });
    expect(ws).toBe(403);
  });
});

describe('the main origin', () => {
  it("refuses cookie-authenticated writes and WebSocket upgrades from an instance host's page", async () => {
    const s = await login(w.server.url, 'alice', 'alice-password');
    const post = (headers: Record<string, string>) =>
      fetch(`${w.server.url}/api/v1/tokens`, {
        method: 'POST',
        headers: { cookie: s.cookie, 'x-csrf-token': s.csrfToken, 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ name: `t${Math.random()}` }),
      });
    expect((await post({ origin: `http://${APP}` })).status).toBe(403);
    expect((await post({ 'sec-fetch-site': 'same-site' })).status).toBe(403);
    expect((await post({})).status).toBe(201);
    const upgrade = (headers: Record<string, string>) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(`${w.server.url.replace(/^http/, 'ws')}/api/v1/relay/chan-1?role=host`, { headers: { cookie: s.cookie, ...headers } });
        ws.once('unexpected-response', (_q, res) => resolve(res.statusCode!));
        ws.once('open', () => {
          resolve(101);
          ws.close();
        });
      });
    expect(await upgrade({ origin: `http://${APP}` })).toBe(403);
    expect(await upgrade({ origin: 'null' })).toBe(403);
  });
});
