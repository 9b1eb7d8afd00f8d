/**
 * Deploying apps: the first deploy creates the app (v1) and its web process gets PORT
 * without asking; a redeploy while a client polls switches to v2 with no failed request; a
 * v3 that never listens fails with its log lines while v2 keeps serving; a failing
 * `release:` command aborts; a failed first deploy can be deployed over.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createUser, startTestServer, type TestServer } from '../helpers/server.js';
import { APPS_DOMAIN, ask, deploy, poll, showApp, viaProxy, waitApp, webApp } from './helpers.js';

let server: TestServer;
let token: string;

beforeAll(async () => {
  server = await startTestServer({ proxy: { baseDomain: APPS_DOMAIN }, apps: { drainSeconds: 1 } });
  token = await createUser(server, 'alice');
});
afterAll(() => server.stop());

describe('deploy creates or updates', () => {
  it('deploys v1 with PORT and PYTHONUNBUFFERED, then v2 while a client polls: no failed request, answers switch from v1 to v2', async () => {
    const v1 = await deploy(server, token, 'shop', webApp('v1'), { description: 'first' });
    expect(v1.status, JSON.stringify(v1.body)).toBe(201);
    expect(v1.body.release).toMatchObject({ version: 1, status: 'active', description: 'first', createdBy: 'alice', processTypes: ['web'] });
    expect(v1.body.app).toMatchObject({ name: 'shop', owner: 'alice', currentVersion: 1, formation: { web: 1 } });
    expect(v1.body.app.copies).toHaveLength(1);
    expect(v1.body.app.copies[0]).toMatchObject({ instance: 'shop.web.1', type: 'web', role: 'active', ready: true });
    expect(v1.body.app.copies[0].ports).toEqual([{ name: 'web', hostPort: expect.any(Number) }]);
    const first = await ask(server, token, 'alice', 'shop');
    expect(first).toMatchObject({ tag: 'v1', copy: 'shop.web.1', unbuffered: '1' });

    const poller = poll(server, token, 'alice', 'shop');
    await new Promise((r) => setTimeout(r, 300));
    const v2 = await deploy(server, token, 'shop', webApp('v2'));
    expect(v2.status, JSON.stringify(v2.body)).toBe(201);
    expect(v2.body.release).toMatchObject({ version: 2, status: 'active' });
    // New requests go to v2 from the switch on; keep polling through the old copy's drain.
    await new Promise((r) => setTimeout(r, 1500));
    const seen = await poller.stop();
    const failed = seen.filter((s) => s.status !== 200);
    expect(failed, JSON.stringify(failed.slice(0, 3))).toEqual([]);
    const tags = seen.map((s) => s.tag);
    expect(tags[0]).toBe('v1');
    expect(tags.at(-1)).toBe('v2');
    // Once v2 answered, v1 never did again.
    expect(tags.slice(tags.indexOf('v2'))).not.toContain('v1');

    const app = await waitApp(server, token, 'shop', (a) => a.switch === null && a.copies.length === 1);
    expect(app.copies[0]).toMatchObject({ version: 2, role: 'active' });
    const releases = await api(server, token, 'GET', '/api/v1/apps/shop/releases');
    expect(releases.body.releases.map((r: any) => [r.version, r.status])).toEqual([
      [2, 'active'],
      [1, 'superseded'],
    ]);
  });

  it('a v3 that never listens fails with its state and log lines; v2 keeps serving', async () => {
    const never = webApp('v3', { procfile: 'web: echo "v3 booting but never listening"; exec sleep 1000\n' });
    const poller = poll(server, token, 'alice', 'shop');
    const v3 = await deploy(server, token, 'shop', never, { settings: { health: { timeoutSeconds: 2 } } });
    const seen = await poller.stop();
    expect(v3.status).toBe(422);
    // The new copy of web.1 takes the name v2's copy does not hold.
    expect(v3.body.error).toMatchObject({ code: 'deploy_failed', release: 3, copy: 'shop.web.1', state: 'running' });
    expect(v3.body.error.message).toMatch(/not ready after 2 s: its port did not accept connections; the previous copies keep serving/);
    expect(v3.body.error.logs.join('\n')).toContain('v3 booting but never listening');
    expect(seen.filter((s) => s.status !== 200)).toEqual([]);
    expect(new Set(seen.map((s) => s.tag))).toEqual(new Set(['v2']));
    expect((await ask(server, token, 'alice', 'shop')).tag).toBe('v2');
    const r3 = await api(server, token, 'GET', '/api/v1/apps/shop/releases/3');
    expect(r3.body).toMatchObject({ version: 3, status: 'failed' });
    expect(r3.body.logs.join('\n')).toContain('v3 booting but never listening');
    const app = await showApp(server, token, 'shop');
    expect(app.currentVersion).toBe(2);
    expect(app.copies.map((c: any) => [c.instance, c.version])).toEqual([['shop.web.1.2', 2]]);
  });

  it('a v4 that crashes reports crash-looping with its exit code', async () => {
    const crash = webApp('v4', { procfile: 'web: echo "v4 is missing a dependency" >&2; exit 3\n' });
    const v4 = await deploy(server, token, 'shop', crash);
    expect(v4.status).toBe(422);
    expect(v4.body.error).toMatchObject({ code: 'deploy_failed', release: 4, state: 'backoff', exitCode: 3 });
    expect(v4.body.error.message).toMatch(/crash-looping \(backoff/);
    expect(v4.body.error.logs.join('\n')).toContain('v4 is missing a dependency');
    expect((await ask(server, token, 'alice', 'shop')).tag).toBe('v2');
  });

  it('a failing release: command aborts the deploy before anything starts', async () => {
    const bad = webApp('v5', { procfile: 'release: echo migrating; exit 7\nweb: node server.js\n' });
    const v5 = await deploy(server, token, 'shop', bad);
    expect(v5.status).toBe(422);
    expect(v5.body.error).toMatchObject({ code: 'deploy_failed', release: 5, copy: 'shop.release.1', exitCode: 7 });
    expect(v5.body.error.message).toMatch(/the release command failed/);
    expect(v5.body.error.logs.join('\n')).toContain('migrating');
    const app = await showApp(server, token, 'shop');
    expect(app.currentVersion).toBe(2);
    expect(app.copies.map((c: any) => [c.instance, c.version])).toEqual([['shop.web.1.2', 2]]);
    // A release phase that passes runs before the switch.
    const good = webApp('v6', { procfile: 'release: echo migrated\nweb: node server.js\n' });
    const v6 = await deploy(server, token, 'shop', good);
    expect(v6.status, JSON.stringify(v6.body)).toBe(201);
    expect((await ask(server, token, 'alice', 'shop')).tag).toBe('v6');
  });

  it('a failed first deploy keeps no copy and can be deployed over', async () => {
    const broken = await deploy(server, token, 'blog', webApp('b1', { procfile: 'web: exit 1\n' }));
    expect(broken.status).toBe(422);
    expect(broken.body.error.message).toMatch(/nothing ran before it/);
    const app = await showApp(server, token, 'blog');
    expect(app).toMatchObject({ currentVersion: null, copies: [] });
    const fixed = await deploy(server, token, 'blog', webApp('b2'));
    expect(fixed.status, JSON.stringify(fixed.body)).toBe(201);
    expect(fixed.body.release.version).toBe(2);
    expect((await ask(server, token, 'alice', 'blog')).tag).toBe('b2');
  });

  it('refuses an archive without a Procfile before making a release', async () => {
    const { tarBytes } = await import('../sources/helpers/archives.js');
    const res = await deploy(server, token, 'nothing', tarBytes([{ path: 'readme', body: 'x' }]));
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('no_procfile');
    expect((await api(server, token, 'GET', '/api/v1/apps/nothing')).status).toBe(404);
  });

  it("another user's app is not found and the proxy does not pass them", async () => {
    const bob = await createUser(server, 'bob');
    expect((await api(server, bob, 'GET', '/api/v1/apps/alice:shop')).status).toBe(404);
    expect((await viaProxy(server, bob, 'alice', 'shop')).status).toBe(404);
  });
});
