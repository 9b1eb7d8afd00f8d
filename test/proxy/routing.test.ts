/** Who may pass, by path and by host, and path tricks that must not reach another tenant. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { proxyWorld, rawRequest, type ProxyWorld } from './fixtures.js';

let w: ProxyWorld;
beforeAll(async () => {
  w = await proxyWorld();
  w.targets.add({ owner: 'bob', ownerId: w.bob.id, name: 'secret', ports: [{ name: 'http', port: w.echo.port }] });
});
afterAll(() => w.close());

const get = (path: string, headers: Record<string, string> = {}) => rawRequest(w.server.url, path, headers);

describe('tenant isolation by path', () => {
  it('lets the owner through with the prefix stripped', async () => {
    const r = await get('/i/alice/app/some/page?x=1', { cookie: w.alice.cookie });
    expect(r.status).toBe(200);
    const seen = JSON.parse(r.body);
    expect(seen.url).toBe('/some/page?x=1');
    expect(seen.headers['x-forwarded-prefix']).toBe('/i/alice/app');
    expect(seen.headers['x-corral-user']).toBe('alice');
  });

  it('gives another user 404, the same as an instance that does not exist', async () => {
    const other = await get('/i/alice/app/', { cookie: w.bob.cookie });
    const missing = await get('/i/alice/nothing/', { cookie: w.bob.cookie });
    expect(other.status).toBe(404);
    expect(missing.status).toBe(404);
    expect(other.body).toBe(missing.body);
  });

  it('lets admins and users the owner shared with through', async () => {
    expect((await get('/i/alice/app/', { authorization: `Bearer ${w.server.adminToken}` })).status).toBe(200);
    const share = await fetch(`${w.server.url}/api/v1/proxy/alice/app`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${w.alice.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ sharedWith: ['bob'] }),
    });
    expect(share.status).toBe(200);
    expect((await get('/i/alice/app/', { cookie: w.bob.cookie })).status).toBe(200);
    await fetch(`${w.server.url}/api/v1/proxy/alice/app`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${w.alice.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ sharedWith: [] }),
    });
    expect((await get('/i/alice/app/', { cookie: w.bob.cookie })).status).toBe(404);
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

  it('routes named ports and 404s unknown ones', async () => {
    expect((await get('/i/alice/app/port/http/x', { cookie: w.alice.cookie })).status).toBe(200);
    expect((await get('/i/alice/app/port/nope/x', { cookie: w.alice.cookie })).status).toBe(404);
  });

  it('needs the proxy scope on tokens', async () => {
    const res = await fetch(`${w.server.url}/api/v1/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${w.alice.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'no-proxy', scopes: ['instances:read'] }),
    });
    const { token } = (await res.json()) as { token: string };
    expect((await get('/i/alice/app/', { authorization: `Bearer ${token}` })).status).toBe(403);
  });
});

describe('path tricks', () => {
  it('resolves dot segments before authorising: /i/alice/x/../../bob/secret is bob/secret', async () => {
    const r = await get('/i/alice/x/../../bob/secret/', { cookie: w.alice.cookie });
    expect(r.status).toBe(404);
    const asBob = await get('/i/alice/x/../../bob/secret/', { cookie: w.bob.cookie });
    expect(asBob.status).toBe(200);
  });

  it('treats %2e%2e as dots', async () => {
    expect((await get('/i/alice/x/%2e%2e/%2E%2E/bob/secret/', { cookie: w.alice.cookie })).status).toBe(404);
  });

  it('never matches encoded slashes in names', async () => {
    expect((await get('/i/bob%2Fsecret/x/', { cookie: w.alice.cookie })).status).toBe(404);
    expect((await get('/i/alice/app%2F..%2F..%2Fbob%2Fsecret/', { cookie: w.alice.cookie })).status).toBe(404);
  });

  it('keeps dot segments inside the instance inside the instance', async () => {
    const r = await get('/i/alice/app/a/../b', { cookie: w.alice.cookie });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).url).toBe('/b');
  });
});

describe('tenant isolation by host', () => {
  it('routes {instance}--{owner}.{baseDomain} with the whole path', async () => {
    const r = await get('/x?y=1', { host: 'app--alice.corral.test', authorization: `Bearer ${w.alice.token}` });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).url).toBe('/x?y=1');
  });

  it('gives another user 404 by host too', async () => {
    const r = await get('/', { host: 'app--alice.corral.test', authorization: `Bearer ${w.bob.token}` });
    expect(r.status).toBe(404);
  });

  it('sends an unauthenticated browser to the login page on the main host, with next back to the instance host', async () => {
    const r = await get('/x?y=1', { host: 'app--alice.corral.test', accept: 'text/html' });
    expect(r.status).toBe(302);
    expect(r.headers.location).toBe(`http://corral.test/login?next=${encodeURIComponent('http://app--alice.corral.test/x?y=1')}`);
  });

  it('leaves other hosts to the API', async () => {
    const r = await get('/healthz', { host: 'corral.test' });
    expect(r.status).toBe(200);
  });
});

describe('unauthenticated', () => {
  it('sends a browser to the login page with next', async () => {
    const r = await get('/i/alice/app/page?q=1', { accept: 'text/html' });
    expect(r.status).toBe(302);
    expect(r.headers.location).toBe(`/login?next=${encodeURIComponent('/i/alice/app/page?q=1')}`);
  });

  it('gives API and XHR clients 401', async () => {
    expect((await get('/i/alice/app/')).status).toBe(401);
    expect((await get('/i/alice/app/', { accept: 'text/html', 'x-requested-with': 'XMLHttpRequest' })).status).toBe(401);
  });

  it('treats a bad token as no token', async () => {
    expect((await get('/i/alice/app/', { authorization: 'Bearer nonsense' })).status).toBe(401);
  });

  it('treats a session cookie with a malformed escape as no cookie', async () => {
    expect((await get('/i/alice/app/', { cookie: 'corral_session=%E0%A4%A' })).status).toBe(401);
    expect((await get('/i/alice/app/', { cookie: `theme=dark; ${w.alice.cookie}` })).status).toBe(200);
  });
});
