/**
 * Split roles: a manager (API, drivers) and two proxy-role processes running as `nobody`,
 * with no Docker socket and no capabilities, sharing one PostgreSQL database. The proxies
 * serve logins, pass the API to the manager and proxy to the manager's instances; the
 * manager's internal API lets in only callers with the shared secret.
 */
import { chown, copyFile, readFile, readlink, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/postgres.js';
import { ADMIN_PASSWORD, api, login, spawnServer, startTestServer, tempDir, type ChildServer, type TestServer } from '../helpers/server.js';
import { rawRequest } from '../proxy/fixtures.js';

const NOBODY = 65534;
const SECRET = 'internal-secret-for-the-roles-test';
const APP = `require('http').createServer((q, s) => { s.end(JSON.stringify({ url: q.url, user: q.headers['x-corral-user'] })); }).listen(process.env.PORT_HTTP, '127.0.0.1')`;

describe('split roles: unprivileged proxies in front of one manager', () => {
  let manager: TestServer;
  const proxies: ChildServer[] = [];
  const dirs: string[] = [];

  const proxyEnv = (databaseUrl: string) => ({
    CORRAL_DATABASE_URL: databaseUrl,
    CORRAL_CLUSTER__MANAGER_URL: manager.url,
    CORRAL_CLUSTER__INTERNAL_SECRET: SECRET,
    CORRAL_PROXY__PATH_ROUTING: 'true', // instances are reached at /i/… with the session cookie (docs/proxy.md)
  });

  beforeAll(async () => {
    const databaseUrl = await createTestDatabase('roles');
    manager = await startTestServer({ role: 'manager', databaseUrl, cluster: { internalSecret: SECRET } });
    // Each proxy has a data directory of its own, owned by nobody, with the manager's signing key.
    const start = async () => {
      const data = await tempDir('corral-proxy-');
      dirs.push(data);
      await copyFile(path.join(manager.data, 'signing-key.json'), path.join(data, 'signing-key.json'));
      for (const p of [data, path.join(data, 'signing-key.json')]) await chown(p, NOBODY, NOBODY);
      return spawnServer(data, proxyEnv(databaseUrl), ['--role', 'proxy'], { uid: NOBODY, gid: NOBODY });
    };
    proxies.push(...(await Promise.all([start(), start()])));
  }, 60_000);

  afterAll(async () => {
    for (const p of proxies) await p.kill('SIGTERM');
    await manager?.stop();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('runs the proxies as nobody, without capabilities or a Docker socket', async () => {
    for (const p of proxies) {
      const status = await readFile(`/proc/${p.child.pid}/status`, 'utf8');
      expect(status).toMatch(new RegExp(`^Uid:\\s+${NOBODY}\\s+${NOBODY}\\s+${NOBODY}\\s+${NOBODY}$`, 'm'));
      expect(status).toMatch(/^CapEff:\s+0+$/m);
      const fds = await readdir(`/proc/${p.child.pid}/fd`);
      const targets = await Promise.all(fds.map((fd) => readlink(`/proc/${p.child.pid}/fd/${fd}`).catch(() => '')));
      expect(targets.filter((t) => /docker|cgroup/.test(t))).toEqual([]);
    }
  });

  /** Gets the login page (for its CSRF cookie and field), then posts the form. */
  const loginWithForm = async (url: string, password: string) => {
    const page = await fetch(`${url}/login`);
    expect(page.status).toBe(200);
    const csrfCookie = page.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    const field = /name="_csrf" value="([^"]+)"/.exec(await page.text())![1]!;
    return fetch(`${url}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: csrfCookie },
      body: new URLSearchParams({ name: 'admin', password, _csrf: field }).toString(),
      redirect: 'manual',
    });
  };

  it('logs in on a proxy with the form, and the session works on every proxy and through the API', async () => {
    const form = await loginWithForm(proxies[0]!.url, ADMIN_PASSWORD);
    expect(form.status).toBe(302);
    const cookie = form.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    expect(cookie).toMatch(/corral_session=/);
    for (const p of proxies) {
      const me = await fetch(`${p.url}/api/v1/me`, { headers: { cookie } });
      expect(me.status).toBe(200);
      expect(((await me.json()) as { user: { name: string } }).user.name).toBe('admin');
    }
    const wrong = await loginWithForm(proxies[1]!.url, 'wrong-password');
    expect(wrong.status).toBe(401);
  });

  it('creates an instance through a proxy and reaches it through both, starting it on demand', async () => {
    const [p0, p1] = [proxies[0]!, proxies[1]!];
    const session = await login(p0.url, 'admin', ADMIN_PASSWORD); // the API login, passed to the manager
    const headers = { cookie: session.cookie, 'x-csrf-token': session.csrfToken, 'content-type': 'application/json' };
    const created = await fetch(`${p0.url}/api/v1/instances`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ name: 'web', command: [process.execPath, '-e', APP], ports: [{ name: 'http' }] }),
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    for (const p of [p0, p1]) {
      await expect
        .poll(async () => (await rawRequest(p.url, '/i/admin/web/hello', { cookie: session.cookie })).body, { timeout: 15_000 })
        .toBe(JSON.stringify({ url: '/hello', user: 'admin' }));
    }
    expect((await rawRequest(p1.url, '/i/admin/web/hello')).status).not.toBe(200); // no credentials

    // Stopped on the manager, started again by a proxy on demand (the manager's internal API).
    expect((await api(manager, manager.adminToken, 'PUT', '/api/v1/proxy/admin/web', { startOnDemand: true })).status).toBe(200);
    expect((await api(manager, manager.adminToken, 'POST', `/api/v1/instances/${id}/stop`)).status).toBe(200);
    await expect
      .poll(async () => (await rawRequest(p1.url, '/i/admin/web/again', { cookie: session.cookie })).status, { timeout: 20_000 })
      .toBe(200);
    expect((await api(manager, manager.adminToken, 'GET', `/api/v1/instances/${id}`)).body.desiredState).toBe('running');
  }, 90_000);

  it('passes API WebSockets to the manager', async () => {
    const ws = new WebSocket(`${proxies[1]!.url.replace('http', 'ws')}/api/v1/events?token=${manager.adminToken}`);
    const opened = await new Promise<boolean>((resolve) => {
      ws.once('open', () => resolve(true));
      ws.once('error', () => resolve(false));
      ws.once('unexpected-response', () => resolve(false));
    });
    ws.close();
    expect(opened).toBe(true);
  });

  it('lets only callers with the internal secret into the internal API', async () => {
    const call = (headers: Record<string, string>, p = '/internal/v1/targets/admin/web') => fetch(`${manager.url}${p}`, { headers });
    const anonymous = await call({});
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as { error: { code: string } }).error.code).toBe('unauthenticated');
    expect((await call({ 'x-corral-internal': 'wrong-secret-of-the-same-size-xx' })).status).toBe(401);
    // Bad input to the instance actions: a JSON validation error, nothing started or stopped.
    const act = (action: string, body: unknown) =>
      fetch(`${manager.url}/internal/v1/instances/00000000-0000-4000-8000-000000000000/${action}`, {
        method: 'POST',
        headers: { 'x-corral-internal': SECRET, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    for (const bad of [await act('restart', { ownerId: 'x' }), await act('start', { ownerId: 'x', extra: 1 }), await act('start', {})]) {
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('validation_failed');
    }
    const ok = await call({ 'x-corral-internal': SECRET });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ state: 'running', ports: [{ name: 'http', host: '127.0.0.1' }] });
    expect((await call({ 'x-corral-internal': SECRET }, '/internal/v1/targets/admin/NOT%20a%20name')).status).toBe(400);
    expect((await call({ 'x-corral-internal': SECRET }, '/internal/v1/targets/admin/missing')).status).toBe(404);
    // Not reachable through a proxy: it forwards /api/ only.
    expect((await fetch(`${proxies[0]!.url}/internal/v1/targets/admin/web`, { headers: { 'x-corral-internal': SECRET } })).status).toBe(404);
  });

  it("counts failed logins against the client's address the proxy saw, and only a proxy may say so", async () => {
    const loginAt = (name: string, password: string, headers: Record<string, string>) =>
      fetch(`${manager.url}/api/v1/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ name, password }),
      }).then((r) => r.status);
    const viaProxy = (ip: string) => ({ 'x-corral-internal': SECRET, 'x-forwarded-for': ip });
    // 20 failures across users lock an address (auth.loginMaxFailuresPerAddress: 4 × loginMaxFailures).
    for (let i = 0; i < 20; i++) expect(await loginAt(`ghost${i}`, 'wrong-password', viaProxy('203.0.113.9'))).toBe(401);
    expect(await loginAt('admin', ADMIN_PASSWORD, viaProxy('203.0.113.9'))).toBe(429); // that address is locked
    expect(await loginAt('admin', ADMIN_PASSWORD, viaProxy('203.0.113.10'))).toBe(200); // another is not
    // Without the secret (or with a wrong one) the forwarding header is ignored: not locked.
    expect(await loginAt('admin', ADMIN_PASSWORD, { 'x-forwarded-for': '203.0.113.9' })).toBe(200);
    expect(await loginAt('admin', ADMIN_PASSWORD, { 'x-corral-internal': 'wrong-secret-of-the-same-size-xx', 'x-forwarded-for': '203.0.113.9' })).toBe(200);
  });
});
