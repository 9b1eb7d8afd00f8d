/**
 * A server killed (SIGKILL) in the middle of a switch: on restart the switch is undone
 * cleanly — the new release's copy goes, the release is failed "interrupted by a server
 * restart", the old release keeps serving and the next deploy works.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { api, createToken, login, spawnServer, tempDir, type ChildServer } from '../helpers/server.js';
import { rm } from 'node:fs/promises';
import { APPS_DOMAIN, ask, deploy, showApp, waitApp, webApp } from './helpers.js';

let data: string;
let child: ChildServer | undefined;
const env = { CORRAL_PROXY__BASE_DOMAIN: APPS_DOMAIN, CORRAL_APPS__DRAIN_SECONDS: '0' };

async function start(): Promise<{ url: string; token: string; data: string }> {
  child = await spawnServer(data, env);
  const token = await createToken(child.url, await login(child.url, 'admin', 'admin-password-for-tests'), `t-${Date.now()}`);
  return { url: child.url, token, data };
}

beforeAll(async () => {
  data = await tempDir('corral-apps-restart-');
});
afterAll(async () => {
  await child?.kill('SIGKILL');
  await rm(data, { recursive: true, force: true });
});

it('undoes a switch a SIGKILL interrupted; the old release serves and the next deploy works', async () => {
  let s = await start();
  const server = s as unknown as Parameters<typeof deploy>[0];
  expect((await deploy(server, s.token, 'steady', webApp('k1'))).status).toBe(201);
  // v2 never listens, with a long timeout: the switch is still starting when the server dies.
  void deploy(server, s.token, 'steady', webApp('k2', { procfile: 'web: exec sleep 1000\n' }), { settings: { health: { timeoutSeconds: 600 } } }).catch(() => undefined);
  await waitApp(server, s.token, 'steady', (a) => a.switch?.phase === 'starting' && a.copies.some((c: any) => c.role === 'new' && c.state === 'running'));
  await child!.kill('SIGKILL');

  s = await start();
  const again = s as unknown as Parameters<typeof deploy>[0];
  const app = await waitApp(again, s.token, 'steady', (a) => a.switch === null && a.copies.length === 1 && a.copies[0].ready);
  expect(app.currentVersion).toBe(1);
  expect(app.copies[0]).toMatchObject({ version: 1, role: 'active' });
  const v2 = await api(again, s.token, 'GET', '/api/v1/apps/steady/releases/2');
  expect(v2.body).toMatchObject({ status: 'failed', error: 'interrupted by a server restart' });
  const instances = await api(again, s.token, 'GET', '/api/v1/instances');
  expect(instances.body.instances.map((i: any) => i.name)).toEqual([app.copies[0].instance]);
  expect((await ask(again as never, s.token, 'admin', 'steady')).tag).toBe('k1');
  expect((await deploy(again, s.token, 'steady', webApp('k3'))).status).toBe(201);
  expect((await showApp(again, s.token, 'steady')).currentVersion).toBe(3);
});
