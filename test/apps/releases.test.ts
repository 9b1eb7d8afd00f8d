/**
 * Releases, rollback, config vars and bad input: a rollback makes a new release from an old
 * one's source and config; a config var change restarts without downtime and the value
 * reaches the app (and no log line); bad input — an unknown release, a negative count, a bad
 * env key, a count above the quota — is a 400/403/404 naming the field, with nothing changed.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createUser, startTestServer, type TestServer } from '../helpers/server.js';
import { APPS_DOMAIN, ask, deploy, poll, showApp, waitApp, webApp } from './helpers.js';

let server: TestServer;
let token: string;

beforeAll(async () => {
  server = await startTestServer({ proxy: { baseDomain: APPS_DOMAIN }, apps: { drainSeconds: 1 } });
  token = await createUser(server, 'rita');
  for (const tag of ['r1', 'r2']) {
    const res = await deploy(server, token, 'site', webApp(tag));
    if (res.status !== 201) throw new Error(JSON.stringify(res.body));
  }
});
afterAll(() => server.stop());

describe('releases and rollback', () => {
  it('rolls back to v1: a new release v3 from v1, serving v1’s code', async () => {
    expect((await ask(server, token, 'rita', 'site')).tag).toBe('r2');
    const back = await api(server, token, 'POST', '/api/v1/apps/site/rollback', { version: 1 });
    expect(back.status, JSON.stringify(back.body)).toBe(201);
    expect(back.body.release).toMatchObject({ version: 3, status: 'active', description: 'rollback to v1' });
    expect((await ask(server, token, 'rita', 'site')).tag).toBe('r1');
    // Without a version: the release before the current one that served (v2).
    const again = await api(server, token, 'POST', '/api/v1/apps/site/rollback', {});
    expect(again.status, JSON.stringify(again.body)).toBe(201);
    expect(again.body.release).toMatchObject({ version: 4, description: 'rollback to v2' });
    expect((await ask(server, token, 'rita', 'site')).tag).toBe('r2');
    const list = await api(server, token, 'GET', '/api/v1/apps/site/releases');
    expect(list.body.releases.map((r: any) => `${r.version}:${r.status}`)).toEqual(['4:active', '3:superseded', '2:superseded', '1:superseded']);
  });
});

describe('config vars', () => {
  it('a change restarts without downtime, the value reaches the app and never a log line', async () => {
    const secret = 'hunter2-secret-value';
    const poller = poll(server, token, 'rita', 'site');
    await new Promise((r) => setTimeout(r, 200));
    const changed = await api(server, token, 'PATCH', '/api/v1/apps/site/env', { set: { GREETING: secret, OTHER: 'x' } });
    expect(changed.status, JSON.stringify(changed.body)).toBe(200);
    expect(changed.body.release).toMatchObject({ version: 5, status: 'active', description: 'config: set GREETING, OTHER', configVars: ['GREETING', 'OTHER'] });
    await new Promise((r) => setTimeout(r, 1200));
    const seen = await poller.stop();
    expect(seen.filter((s) => s.status !== 200)).toEqual([]);
    expect((await ask(server, token, 'rita', 'site')).greeting).toBe(secret);
    expect(changed.body.app.configVars).toEqual(['GREETING', 'OTHER']);
    expect(JSON.stringify(changed.body.app)).not.toContain(secret);
    const env = await api(server, token, 'GET', '/api/v1/apps/site/env');
    expect(env.body.env).toEqual({ GREETING: secret, OTHER: 'x' });

    const unset = await api(server, token, 'PATCH', '/api/v1/apps/site/env', { unset: ['OTHER'] });
    expect(unset.status).toBe(200);
    expect(unset.body.release).toMatchObject({ version: 6, description: 'config: unset OTHER', configVars: ['GREETING'] });

    // The copy's log holds what the app printed, not its environment.
    const app = await waitApp(server, token, 'site', (a) => a.switch === null);
    const copy = app.copies[0];
    const logs = await readFile(path.join(server.data, 'instances', copy.id, 'logs', 'output.log'), 'utf8').catch(() => '');
    expect(logs).toContain('listening on');
    expect(logs).not.toContain(secret);
    const releases = await api(server, token, 'GET', '/api/v1/apps/site/releases');
    expect(JSON.stringify(releases.body)).not.toContain(secret);
  });
});

describe('bad input changes nothing', () => {
  it('an unknown release is 404 naming the version', async () => {
    const before = await showApp(server, token, 'site');
    const r = await api(server, token, 'POST', '/api/v1/apps/site/rollback', { version: 99 });
    expect(r.status).toBe(404);
    expect(r.body.error).toMatchObject({ code: 'release_not_found', field: 'version' });
    expect(r.body.error.message).toMatch(/v99/);
    expect((await api(server, token, 'GET', '/api/v1/apps/site/releases/99')).status).toBe(404);
    expect((await showApp(server, token, 'site')).currentVersion).toBe(before.currentVersion);
  });

  it('scale web=-1 and an unknown process type are 400 naming the field', async () => {
    const neg = await api(server, token, 'PUT', '/api/v1/apps/site/formation', { web: -1 });
    expect(neg.status).toBe(400);
    expect(neg.body.error.message).toMatch(/^body\.web: /);
    const unknown = await api(server, token, 'PUT', '/api/v1/apps/site/formation', { worker: 1 });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.message).toMatch(/^body\.worker: the Procfile of v\d+ has no process type "worker"/);
    expect((await showApp(server, token, 'site')).formation).toEqual({ web: 1 });
  });

  it('a bad env key is 400 naming it; nothing changed', async () => {
    const before = await api(server, token, 'GET', '/api/v1/apps/site/releases');
    for (const body of [{ set: { 'BAD-KEY': 'x' } }, { set: { '1ABC': 'x' } }, { unset: ['no spaces'] }, {}]) {
      const r = await api(server, token, 'PATCH', '/api/v1/apps/site/env', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error.message, JSON.stringify(body)).toMatch(/^body(\.set|\.unset\.0)?: /);
    }
    const after = await api(server, token, 'GET', '/api/v1/apps/site/releases');
    expect(after.body.releases.length).toBe(before.body.releases.length);
  });

  it('scaling above the instances quota is 403 naming the quota; no copy is left behind', async () => {
    const quota = await api(server, server.adminToken, 'PATCH', '/api/v1/users/rita/quotas', { instances: 2 });
    expect(quota.status).toBe(200);
    const before = await waitApp(server, token, 'site', (a) => a.switch === null && a.copies.length === 1);
    const r = await api(server, token, 'PUT', '/api/v1/apps/site/formation', { web: 3 });
    expect(r.status).toBe(403);
    expect(r.body.error).toMatchObject({ code: 'quota_exceeded', quota: 'instances', limit: 2 });
    const after = await showApp(server, token, 'site');
    expect(after.formation).toEqual({ web: 1 });
    expect(after.copies.map((c: any) => c.instance)).toEqual(before.copies.map((c: any) => c.instance));
    const instances = await api(server, token, 'GET', '/api/v1/instances');
    expect(instances.body.instances).toHaveLength(1);
    // At the quota, a redeploy still switches: the new copy replaces the old one.
    const redeploy = await deploy(server, token, 'site', webApp('r9'));
    expect(redeploy.status, JSON.stringify(redeploy.body)).toBe(201);
    await api(server, server.adminToken, 'PATCH', '/api/v1/users/rita/quotas', { instances: null });
  });

  it('an unknown app is 404; a name that is not an app name is 400', async () => {
    const missing = await api(server, token, 'GET', '/api/v1/apps/nope');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('app_not_found');
    const badName = await deploy(server, token, 'Bad_Name', webApp('x'));
    expect(badName.status).toBe(400);
    expect(badName.body.error.message).toMatch(/name/);
  });
});
