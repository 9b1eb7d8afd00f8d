/**
 * Managers sharing one PostgreSQL database: an instance says which manager holds its lease
 * and until when, and `stale` once that lease ran out with no manager holding it — not the
 * `running` the store last recorded (issue: B reported `running` for ~22 s while nothing ran).
 * B reconciles rarely here, so the gap between A's death and a takeover stays open to look at.
 */
import { copyFile, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInstance, waitFor, waitForState } from '../instances/helpers.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { ADMIN_PASSWORD, api, createToken, login, spawnServer, tempDir, type ChildServer } from '../helpers/server.js';

const LEASE_SECONDS = 2;
const env = (databaseUrl: string, reconcileSeconds: number) => ({
  CORRAL_DATABASE_URL: databaseUrl,
  CORRAL_CLUSTER__LEASE_SECONDS: String(LEASE_SECONDS),
  CORRAL_INSTANCES__RECONCILE_SECONDS: String(reconcileSeconds),
});

describe('the lease holder and the stale state', () => {
  const dirs: string[] = [];
  let a: ChildServer;
  let b: ChildServer;
  let tokenA: string;
  let tokenB: string;
  let idA: string;
  let idB: string;

  beforeAll(async () => {
    const databaseUrl = await createTestDatabase('holder');
    const [dataA, dataB] = [await tempDir(), await tempDir()];
    dirs.push(dataA, dataB);
    a = await spawnServer(dataA, env(databaseUrl, 0.5), ['--role', 'manager']);
    await copyFile(path.join(dataA, 'signing-key.json'), path.join(dataB, 'signing-key.json'));
    // B never reconciles on its own during the test: it takes an instance over only when asked.
    b = await spawnServer(dataB, env(databaseUrl, 3600), ['--role', 'manager']);
    tokenA = await createToken(a.url, await login(a.url, 'admin', ADMIN_PASSWORD), 'a');
    tokenB = await createToken(b.url, await login(b.url, 'admin', ADMIN_PASSWORD), 'b');
    idA = (await readFile(path.join(dataA, 'manager-id'), 'utf8')).trim();
    idB = (await readFile(path.join(dataB, 'manager-id'), 'utf8')).trim();
  }, 60_000);

  afterAll(async () => {
    await a?.kill('SIGKILL');
    await b?.kill('SIGTERM');
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('names the holder, says stale once its lease expired, and the new holder after a takeover', async () => {
    const web = await createInstance(a, tokenA, { name: 'web', shell: 'exec sleep 1000' });
    const idle = await createInstance(a, tokenA, { name: 'idle', shell: 'exec sleep 1000' });
    await waitForState(a, tokenA, web.id, 'running');
    expect((await api(a, tokenA, 'POST', `/api/v1/instances/${idle.id}/stop`)).status).toBe(200);
    await waitForState(a, tokenA, idle.id, 'stopped');

    // Both managers name A as the holder, with a lease that runs into the future.
    for (const [server, token] of [[a, tokenA], [b, tokenB]] as const) {
      const shown = (await api(server, token, 'GET', `/api/v1/instances/${web.id}`)).body;
      expect(shown).toMatchObject({ state: 'running', holder: { managerId: idA } });
      expect(Date.parse(shown.holder.leaseExpiresAt)).toBeGreaterThan(Date.now());
    }

    await a.kill('SIGKILL');
    // Nobody renews A's lease: once it ran out, B says stale (in the list too), naming the lapsed holder.
    const stale = await waitFor(b, tokenB, web.id, (i) => i.state === 'stale', LEASE_SECONDS * 1000 + 10_000);
    expect(stale.holder.managerId).toBe(idA);
    expect(Date.parse(stale.holder.leaseExpiresAt)).toBeLessThanOrEqual(Date.now());
    const listed = (await api(b, tokenB, 'GET', '/api/v1/instances')).body.instances;
    expect(listed.find((i: { id: string }) => i.id === web.id).state).toBe('stale');
    // A stopped instance needs nobody to watch it: it stays stopped, not stale.
    expect((await api(b, tokenB, 'GET', `/api/v1/instances/${idle.id}`)).body.state).toBe('stopped');

    // A start on B takes the lease: B holds it, and it runs again.
    expect((await api(b, tokenB, 'POST', `/api/v1/instances/${web.id}/start`)).status).toBe(200);
    const taken = await waitFor(b, tokenB, web.id, (i) => i.state === 'running', 20_000);
    expect(taken.holder.managerId).toBe(idB);
    expect(Date.parse(taken.holder.leaseExpiresAt)).toBeGreaterThan(Date.now());
  }, 90_000);
});
