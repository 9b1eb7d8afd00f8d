/**
 * A proxy role in front of a manager that stops answering (SIGSTOP: how a stalled process or
 * a network partition looks — the kernel still accepts its connections). The proxy must not
 * hang: API calls end in 504 `manager_timeout` after `cluster.managerTimeoutSeconds`, API
 * WebSockets likewise, and an instance whose route the proxy already knows keeps being served.
 */
import { copyFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { ADMIN_PASSWORD, login, spawnServer, tempDir, type ChildServer } from '../helpers/server.js';
import { rawRequest } from '../proxy/fixtures.js';
import { refusedWith } from '../relay/ws-client.js';

const SECRET = 'internal-secret-for-the-frozen-test';
const APP = `require('http').createServer((q, s) => s.end('served ' + q.url)).listen(process.env.PORT_HTTP, '127.0.0.1')`;

describe('a proxy role in front of a frozen manager', () => {
  let manager: ChildServer;
  let proxy: RunningServer;
  const dirs: string[] = [];
  let stopped = false;

  beforeAll(async () => {
    const databaseUrl = await createTestDatabase('frozen');
    const [managerData, proxyData] = [await tempDir('corral-manager-'), await tempDir('corral-proxy-')];
    dirs.push(managerData, proxyData);
    manager = await spawnServer(managerData, { CORRAL_DATABASE_URL: databaseUrl, CORRAL_CLUSTER__INTERNAL_SECRET: SECRET }, ['--role', 'manager']);
    await copyFile(path.join(managerData, 'signing-key.json'), path.join(proxyData, 'signing-key.json'));
    proxy = await startServer(
      loadConfig({
        flags: {
          host: '127.0.0.1',
          port: 0,
          logLevel: 'silent',
          data: proxyData,
          databaseUrl,
          role: 'proxy',
          cluster: { managerUrl: manager.url, internalSecret: SECRET, managerTimeoutSeconds: 1 },
        },
      }),
    );
  }, 60_000);

  afterAll(async () => {
    if (stopped) manager?.child.kill('SIGCONT');
    await proxy?.close();
    await manager?.kill('SIGTERM');
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('answers API calls with 504 in time, keeps serving instances it knows, and recovers', async () => {
    const session = await login(proxy.url, 'admin', ADMIN_PASSWORD);
    const headers = { cookie: session.cookie, 'x-csrf-token': session.csrfToken, 'content-type': 'application/json' };
    const created = await fetch(`${proxy.url}/api/v1/instances`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ name: 'web', command: [process.execPath, '-e', APP], ports: [{ name: 'http' }] }),
    });
    expect(created.status).toBe(201);
    const tokenRes = await fetch(`${proxy.url}/api/v1/tokens`, { method: 'POST', headers, body: JSON.stringify({ name: 'frozen' }) });
    const { token } = (await tokenRes.json()) as { token: string };
    // The instance on its own host, as a non-browser client reaches it: a token, no cookie.
    const app = (p: string) =>
      rawRequest(proxy.url, p, { host: `web--admin.localhost:${new URL(proxy.url).port}`, authorization: `Bearer ${token}` });
    await expect
      .poll(async () => (await app('/before')).body, { timeout: 20_000 })
      .toBe('served /before');

    manager.child.kill('SIGSTOP');
    stopped = true;
    // Past the proxy's own lookup cache (proxy.authCacheMs, 1 s): the next request asks the manager.
    await new Promise((r) => setTimeout(r, 1500));

    const served = await app('/during');
    expect([served.status, served.body]).toEqual([200, 'served /during']);

    const api = await fetch(`${proxy.url}/api/v1/`, { signal: AbortSignal.timeout(30_000) });
    expect(api.status).toBe(504);
    expect(((await api.json()) as { error: { code: string } }).error.code).toBe('manager_timeout');

    expect(await refusedWith(`${proxy.url.replace('http', 'ws')}/api/v1/events`, { cookie: session.cookie })).toBe(504);

    manager.child.kill('SIGCONT');
    stopped = false;
    await expect.poll(async () => (await fetch(`${proxy.url}/api/v1/`)).status, { timeout: 20_000 }).toBe(200);
  }, 90_000);
});
