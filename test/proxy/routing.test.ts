/**
 * Who may pass and where: instances on hosts of their own, malformed hosts, `/i/…` on the
 * main origin (a redirect by default; served, sandboxed, only with the unsafe path routing),
 * and path tricks that must not reach another tenant.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { hostCookie, hostName, proxyWorld, rawRequest, type ProxyWorld } from './fixtures.js';

let w: ProxyWorld;
let paths: ProxyWorld;
const APP = hostName('app', 'alice');
const SECRET = hostName('secret', 'bob');
beforeAll(async () => {
  w = await proxyWorld();
  w.targets.add({ owner: 'bob', ownerId: w.bob.id, name: 'secret', ports: [{ name: 'http', port: w.echo.port }] });
  paths = await proxyWorld({ pathRouting: true });
  paths.targets.add({ owner: 'bob', ownerId: paths.bob.id, name: 'secret', ports: [{ name: 'http', port: paths.echo.port }] });
});
afterAll(async () => {
  await w.close();
  await paths.close();
});

const port = () => new URL(w.server.url).port;
const share = (world: ProxyWorld, sharedWith: string[]) =>
  fetch(`${world.server.url}/api/v1/proxy/alice/app`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${world.alice.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ sharedWith }),
  });

describe('tenant isolation by host', () => {
  it('lets the owner through with the whole path, on the host cookie from the handshake', async () => {
    const r = await w.onHost(APP, '/some/page?x=1', { cookie: w.aliceApp });
    expect(r.status).toBe(200);
    const seen = JSON.parse(r.body);
    expect(seen.url).toBe('/some/page?x=1');
    expect(seen.headers['x-forwarded-prefix']).toBeUndefined();
    expect(seen.headers['x-forwarded-host']).toBe(APP);
    expect(seen.headers['x-corral-user']).toBe('alice');
  });

  it('gives another user 404 at the handshake and by token, the same as an instance that does not exist', async () => {
    await expect(hostCookie(w.server, w.bob.cookie, APP)).rejects.toThrow('refused: 404');
    const other = await w.onHost(APP, '/', { authorization: `Bearer ${w.bob.token}` });
    const missing = await w.onHost(hostName('nothing', 'alice'), '/', { authorization: `Bearer ${w.bob.token}` });
    expect(other.status).toBe(404);
    expect(missing.status).toBe(404);
    expect(other.body).toBe(missing.body);
  });

  it('lets admins and users the owner shared with through, until unshared', async () => {
    expect((await w.onHost(APP, '/', { authorization: `Bearer ${w.server.adminToken}` })).status).toBe(200);
    expect((await share(w, ['bob'])).status).toBe(200);
    const bobs = await hostCookie(w.server, w.bob.cookie, APP);
    expect((await w.onHost(APP, '/', { cookie: bobs })).status).toBe(200);
    await share(w, []);
    await expect.poll(async () => (await w.onHost(APP, '/', { cookie: bobs })).status).toBe(404);
  });

  it('refuses the settings API to a user who does not own the instance', async () => {
    const r = await fetch(`${w.server.url}/api/v1/proxy/alice/app`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${w.bob.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ sharedWith: ['bob'] }),
    });
    expect(r.status).toBe(404);
    const bad = await fetch(`${w.server.url}/api/v1/proxy/alice/app`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${w.alice.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ sharedWith: ['bob'], evil: true }),
    });
    expect(bad.status).toBe(400);
  });

  it('gives the address in the settings and in GET /api/v1/proxy', async () => {
    const s = await fetch(`${w.server.url}/api/v1/proxy/alice/app`, { headers: { authorization: `Bearer ${w.alice.token}` } });
    expect(((await s.json()) as { url: string }).url).toBe(`http://${APP}:${port()}/`);
    const a = await fetch(`${w.server.url}/api/v1/proxy`, { headers: { authorization: `Bearer ${w.alice.token}` } });
    expect(await a.json()).toEqual({ appUrl: `http://{instance}--{owner}.corral.test:${port()}/`, namePattern: expect.any(String), pathRouting: false });
  });

  it('routes named ports at {instance}--{owner}--{port} and 404s unknown ones', async () => {
    const auth = { authorization: `Bearer ${w.alice.token}` };
    expect((await w.onHost(hostName('app', 'alice', 'http'), '/x', auth)).status).toBe(200);
    expect((await w.onHost(hostName('app', 'alice', 'nope'), '/x', auth)).status).toBe(404);
  });

  it('needs the proxy scope on tokens', async () => {
    const res = await fetch(`${w.server.url}/api/v1/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${w.alice.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'no-proxy', scopes: ['instances:read'] }),
    });
    const { token } = (await res.json()) as { token: string };
    expect((await w.onHost(APP, '/', { authorization: `Bearer ${token}` })).status).toBe(403);
  });

  it('does not take the main session cookie on an instance host', async () => {
    expect((await w.onHost(APP, '/', { cookie: w.alice.cookie })).status).toBe(401);
    const page = await w.onHost(APP, '/', { cookie: w.alice.cookie, accept: 'text/html' });
    expect(page.status).toBe(302);
    expect(page.headers.location).toContain('/host-login?host=app--alice');
  });

  it('leaves the main host and other hosts to the API', async () => {
    expect((await rawRequest(w.server.url, '/healthz', { host: 'corral.test' })).status).toBe(200);
    expect((await rawRequest(w.server.url, '/healthz', { host: `localhost:${port()}` })).status).toBe(200);
  });
});

describe('malformed instance hosts', () => {
  it.each([
    'nolabel.corral.test',
    'a--b--c--d.corral.test',
    'app---alice.corral.test',
    '-app--alice.corral.test',
    'app--alice-.corral.test',
    'app--al.ice.corral.test',
    'app--alice--Port-1.corral.test',
    `${'a'.repeat(40)}--${'b'.repeat(30)}.corral.test`,
  ])('answers 404 for %s, with or without credentials, and never reaches the API', async (host) => {
    const tries: Record<string, string>[] = [{}, { accept: 'text/html' }, { authorization: `Bearer ${w.alice.token}` }];
    for (const headers of tries) {
      const r = await w.onHost(host, '/api/v1/me', headers);
      expect(r.status).toBe(404);
      expect(r.body).not.toContain('alice');
    }
  });

  it('refuses WebSockets to a malformed host and to the reserved paths', async () => {
    for (const [host, path] of [['a--b--c--d.corral.test', '/'], [APP, '/_corral/callback']]) {
      const status = await new Promise<number>((resolve) => {
        const ws = new WebSocket(`${w.server.url.replace(/^http/, 'ws')}${path}`, { headers: { host, authorization: `Bearer ${w.alice.token}` } });
        ws.once('unexpected-response', (_q, res) => resolve(res.statusCode!));
        ws.once('open', () => resolve(101));
        ws.once('error', () => resolve(0));
      });
      expect(status).toBe(404);
    }
  });
});

describe('unauthenticated on an instance host', () => {
  it('sends a browser to the handshake on the main origin, with the path to come back to', async () => {
    const r = await w.onHost(APP, '/x?y=1&token=', { accept: 'text/html' });
    expect(r.status).toBe(302);
    expect(r.headers.location).toBe(`http://localhost:${port()}/host-login?host=app--alice&next=${encodeURIComponent('/x?y=1')}`);
  });

  it('gives API and XHR clients 401, and treats a bad token as none', async () => {
    expect((await w.onHost(APP, '/')).status).toBe(401);
    expect((await w.onHost(APP, '/', { accept: 'text/html', 'x-requested-with': 'XMLHttpRequest' })).status).toBe(401);
    expect((await w.onHost(APP, '/', { authorization: 'Bearer nonsense' })).status).toBe(401);
    expect((await w.onHost(APP, '/', { cookie: 'corral_host=%E0%A4%A' })).status).toBe(401);
  });
});

describe('/i/ on the main origin without path routing', () => {
  it('redirects GET to the instance host, named ports too, without the token', async () => {
    const r = await rawRequest(w.server.url, '/i/alice/app/x?y=1', { cookie: w.alice.cookie });
    expect(r.status).toBe(302);
    expect(r.headers.location).toBe(`http://${APP}:${port()}/x?y=1`);
    const named = await rawRequest(w.server.url, `/i/alice/app/port/http/x?token=${w.alice.token}`);
    expect(named.headers.location).toBe(`http://${hostName('app', 'alice', 'http')}:${port()}/x`);
  });

  it('never serves the instance there: other methods get 404, WebSockets too', async () => {
    const post = await rawRequest(w.server.url, '/i/alice/app/', { authorization: `Bearer ${w.alice.token}` }, 'POST');
    expect(post.status).toBe(404);
    expect(JSON.parse(post.body).error.code).toBe('path_routing_off');
    const status = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`${w.server.url.replace(/^http/, 'ws')}/i/alice/app/ws`, { headers: { cookie: w.alice.cookie } });
      ws.once('unexpected-response', (_q, res) => resolve(res.statusCode!));
      ws.once('open', () => resolve(101));
    });
    expect(status).toBe(404);
  });
});

describe('path routing (the unsafe setting)', () => {
  const get = (path: string, headers: Record<string, string> = {}) => rawRequest(paths.server.url, path, headers);

  it('serves the instance with the prefix stripped, in a CSP sandbox (an opaque origin)', async () => {
    const r = await get('/i/alice/app/some/page?x=1', { cookie: paths.alice.cookie });
    expect(r.status).toBe(200);
    expect(r.headers['content-security-policy']).toMatch(/^sandbox allow-scripts/);
    expect(r.headers['content-security-policy']).not.toContain('allow-same-origin');
    const seen = JSON.parse(r.body);
    expect(seen.url).toBe('/some/page?x=1');
    expect(seen.headers['x-forwarded-prefix']).toBe('/i/alice/app');
    expect(seen.headers['x-corral-user']).toBe('alice');
  });

  it('gives another user 404, the same as an instance that does not exist', async () => {
    const other = await get('/i/alice/app/', { cookie: paths.bob.cookie });
    const missing = await get('/i/alice/nothing/', { cookie: paths.bob.cookie });
    expect(other.status).toBe(404);
    expect(other.body).toBe(missing.body);
    expect((await share(paths, ['bob'])).status).toBe(200);
    expect((await get('/i/alice/app/', { cookie: paths.bob.cookie })).status).toBe(200);
    await share(paths, []);
  });

  it('resolves dot segments before authorising: /i/alice/x/../../bob/secret is bob/secret', async () => {
    expect((await get('/i/alice/x/../../bob/secret/', { cookie: paths.alice.cookie })).status).toBe(404);
    expect((await get('/i/alice/x/../../bob/secret/', { cookie: paths.bob.cookie })).status).toBe(200);
    expect((await get('/i/alice/x/%2e%2e/%2E%2E/bob/secret/', { cookie: paths.alice.cookie })).status).toBe(404);
  });

  it('never matches encoded slashes in names', async () => {
    expect((await get('/i/bob%2Fsecret/x/', { cookie: paths.alice.cookie })).status).toBe(404);
    expect((await get('/i/alice/app%2F..%2F..%2Fbob%2Fsecret/', { cookie: paths.alice.cookie })).status).toBe(404);
  });

  it('keeps dot segments inside the instance inside the instance', async () => {
    const r = await get('/i/alice/app/a/../b', { cookie: paths.alice.cookie });
    expect(JSON.parse(r.body).url).toBe('/b');
  });

  it('sends a browser without a credential to the login form, and gives API clients 401', async () => {
    const r = await get('/i/alice/app/page?q=1', { accept: 'text/html' });
    expect(r.status).toBe(302);
    expect(r.headers.location).toBe(`/login?next=${encodeURIComponent('/i/alice/app/page?q=1')}`);
    expect((await get('/i/alice/app/')).status).toBe(401);
    expect((await get('/i/alice/app/', { authorization: 'Bearer nonsense' })).status).toBe(401);
    expect((await get('/i/alice/app/', { cookie: 'corral_session=%E0%A4%A' })).status).toBe(401);
    expect((await get('/i/alice/app/', { cookie: `theme=dark; ${paths.alice.cookie}` })).status).toBe(200);
  });

  it('says so in GET /api/v1/proxy', async () => {
    const a = await fetch(`${paths.server.url}/api/v1/proxy`, { headers: { authorization: `Bearer ${paths.alice.token}` } });
    expect(((await a.json()) as { pathRouting: boolean }).pathRouting).toBe(true);
  });
});
