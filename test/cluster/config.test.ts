/**
 * Role configuration: what a proxy role refuses to start without, secrets masked, and a
 * manager on a unix socket serving a proxy that has no shared secret (the socket is the guard).
 */
import { copyFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { request } from 'undici';
import { Agent } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, maskSecrets } from '../../src/core/config.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { ADMIN_PASSWORD, login, tempDir } from '../helpers/server.js';

const base = { host: '127.0.0.1', port: 0, logLevel: 'silent', adminPassword: ADMIN_PASSWORD };
const dirs: string[] = [];
const servers: RunningServer[] = [];
afterAll(async () => {
  for (const s of servers.reverse()) await s.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
const dir = async () => {
  const d = await tempDir('corral-roles-');
  dirs.push(d);
  return d;
};

describe('role configuration', () => {
  it('refuses a proxy role without a manager, without a secret on a network address, or without the signing key', async () => {
    const data = await dir();
    const start = (cluster: Record<string, unknown>) => startServer(loadConfig({ flags: { ...base, data, role: 'proxy', cluster } }));
    await expect(start({})).rejects.toThrow(/role proxy needs cluster.managerUrl/);
    await expect(start({ managerUrl: 'http://127.0.0.1:9' })).rejects.toThrow(/needs cluster.internalSecret/);
    await expect(start({ managerUrl: 'unix:/nonexistent.sock' })).rejects.toThrow(/signing-key.json/);
    expect(() => loadConfig({ flags: { role: 'router' } })).toThrow(/config key "role"/);
    expect(() => loadConfig({ flags: { cluster: { managerUrl: 'ftp://x' } } })).toThrow(/cluster.managerUrl/);
    expect(() => loadConfig({ env: { CORRAL_CLUSTER__INTERNAL_SECRET: 'short' } })).toThrow(/cluster.internalSecret/);
    expect(() => loadConfig({ env: { CORRAL_CLUSTER__LEASE_SECONDS: '0' } })).toThrow(/cluster.leaseSeconds/);
    expect(() => loadConfig({ flags: { cluster: { leaseSecs: 5 } } })).toThrow(/leaseSecs/);
    expect(() => loadConfig({ env: { CORRAL_DATABASE_URL: 'mysql://x' } })).toThrow(/databaseUrl/);
    // A refused secret is named, never echoed.
    for (const env of [{ CORRAL_DATABASE_URL: 'mysql://u:hunter2@db/x' }, { CORRAL_CLUSTER__INTERNAL_SECRET: 'hunter2' }]) {
      expect(() => loadConfig({ env })).toThrow(/config key .*\(got \(a secret, not shown\)\)/);
      expect(() => loadConfig({ env })).not.toThrow(/hunter2/);
    }
  });

  it('masks the database URL and the internal secret', () => {
    const config = loadConfig({
      env: { CORRAL_DATABASE_URL: 'postgres://corral:pw@db/corral', CORRAL_CLUSTER__INTERNAL_SECRET: 'a-long-internal-secret' },
    });
    expect(config.databaseUrl).toBe('postgres://corral:pw@db/corral');
    const shown = JSON.stringify(maskSecrets(config));
    expect(shown).not.toContain('pw@db');
    expect(shown).not.toContain('a-long-internal-secret');
  });
});

describe('a manager on a unix socket', () => {
  it('serves a proxy without a shared secret; the socket is the only way into its internal API', async () => {
    const databaseUrl = await createTestDatabase('socket');
    const [managerData, proxyData, sockDir] = [await dir(), await dir(), await dir()];
    const socket = path.join(sockDir, 'manager.sock');
    const manager = await startServer(loadConfig({ flags: { ...base, data: managerData, databaseUrl, role: 'manager', cluster: { socket } } }));
    servers.push(manager);
    expect(manager.url).toBe(`unix:${socket}`);
    const agent = new Agent({ connect: { socketPath: socket } });
    const internal = await request('http://localhost/internal/v1/targets/admin/none', { dispatcher: agent });
    expect(internal.statusCode).toBe(404); // let in (no secret needed on the socket), nothing there
    await internal.body.dump();
    await agent.close();

    await copyFile(path.join(managerData, 'signing-key.json'), path.join(proxyData, 'signing-key.json'));
    const proxy = await startServer(
      loadConfig({ flags: { ...base, data: proxyData, databaseUrl, role: 'proxy', cluster: { managerUrl: `unix:${socket}` } } }),
    );
    servers.push(proxy);
    const session = await login(proxy.url, 'admin', ADMIN_PASSWORD);
    const me = await fetch(`${proxy.url}/api/v1/me`, { headers: { cookie: session.cookie } });
    expect(me.status).toBe(200);
    // The proxy itself has no internal API, and the manager's is not reachable through it.
    expect((await fetch(`${proxy.url}/internal/v1/targets/admin/none`)).status).toBe(404);
  }, 60_000);

  it('answers 502 manager_unavailable through the proxy when the manager is gone', async () => {
    const [manager, proxy] = servers as [RunningServer, RunningServer];
    await manager.close();
    servers.splice(0, 1);
    const res = await fetch(`${proxy.url}/api/v1/me`);
    expect(res.status).toBe(502);
    expect(await res.json()).toEqual({ error: { code: 'manager_unavailable', message: 'the manager cannot be reached' } });
  });
});
