/**
 * Two managers on one PostgreSQL database: each instance is supervised by exactly one of
 * them (its lease); when one is killed with SIGKILL the other takes its instances over —
 * those whose desired state is running start again on the survivor, stopped ones stay stopped.
 */
import { copyFile, rm } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInstance, processesMatching, waitFor, waitForState } from '../instances/helpers.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { ADMIN_PASSWORD, api, createToken, KEEPER_OFF_ENV, login, spawnServer, tempDir, type ChildServer } from '../helpers/server.js';

const LEASE_SECONDS = 2;
const env = (databaseUrl: string) => ({
  // The restart path: without the keeper A's workloads die with it. (With the keeper, the
  // default, the survivor on the same host adopts them instead: keeper-takeover.test.ts.)
  ...KEEPER_OFF_ENV,
  CORRAL_DATABASE_URL: databaseUrl,
  CORRAL_CLUSTER__LEASE_SECONDS: String(LEASE_SECONDS),
  CORRAL_INSTANCES__RECONCILE_SECONDS: '0.5',
  CORRAL_INSTANCES__RESTART__INITIAL_DELAY_MS: '100',
});

describe('two managers sharing one PostgreSQL database', () => {
  let databaseUrl: string;
  const dirs: string[] = [];
  let a: ChildServer;
  let b: ChildServer;
  let tokenA: string;
  let tokenB: string;
  const marker = `takeover-${process.pid}-${Date.now()}`;

  const leases = async () => {
    const c = new pg.Client({ connectionString: databaseUrl });
    await c.connect();
    try {
      return (await c.query<{ instance_id: string; manager_id: string }>('select instance_id, manager_id from instance_leases')).rows;
    } finally {
      await c.end();
    }
  };

  beforeAll(async () => {
    databaseUrl = await createTestDatabase('takeover');
    const [dataA, dataB] = [await tempDir(), await tempDir()];
    dirs.push(dataA, dataB);
    a = await spawnServer(dataA, env(databaseUrl), ['--role', 'manager']);
    // Tokens are signed with the key in the data directory: managers of one cluster share it.
    await copyFile(path.join(dataA, 'signing-key.json'), path.join(dataB, 'signing-key.json'));
    b = await spawnServer(dataB, env(databaseUrl), ['--role', 'manager']);
    tokenA = await createToken(a.url, await login(a.url, 'admin', ADMIN_PASSWORD), 'a');
    tokenB = await createToken(b.url, await login(b.url, 'admin', ADMIN_PASSWORD), 'b');
  }, 60_000);

  afterAll(async () => {
    await a?.kill('SIGKILL');
    await b?.kill('SIGTERM');
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('supervises each instance once, and the survivor takes over when a manager is killed', async () => {
    const web = await createInstance(a, tokenA, { name: 'web', shell: `exec sleep 1000 # ${marker}-web` });
    const idle = await createInstance(a, tokenA, { name: 'idle', shell: `exec sleep 1000 # ${marker}-idle` });
    await waitForState(a, tokenA, web.id, 'running');
    // Processes of one copy (the sandbox may add a parent that shows the same command line).
    const oneCopy = (await processesMatching(`${marker}-web`)).length;
    expect(oneCopy).toBeGreaterThan(0);
    expect((await api(a, tokenA, 'POST', `/api/v1/instances/${idle.id}/stop`)).status).toBe(200);
    await waitForState(a, tokenA, idle.id, 'stopped');

    // B sees the instance but does not start a second copy while A's lease is fresh.
    await new Promise((r) => setTimeout(r, LEASE_SECONDS * 2000));
    expect(await processesMatching(`${marker}-web`)).toHaveLength(oneCopy);
    const before = (await api(b, tokenB, 'GET', `/api/v1/instances/${web.id}`)).body;
    expect(before).toMatchObject({ state: 'running', generation: web.generation });
    const held = await leases();
    const managerA = held.find((l) => l.instance_id === web.id)!.manager_id;
    expect(managerA).toBeTruthy();

    await a.kill('SIGKILL');
    const after = await waitFor(b, tokenB, web.id, (i) => i.state === 'running' && i.generation > before.generation, 30_000);
    expect(after.startedAt > before.startedAt).toBe(true);
    const now = await leases();
    const managerB = now.find((l) => l.instance_id === web.id)!.manager_id;
    expect(managerB).not.toBe(managerA);
    // One copy runs (A's died with it), and the stopped instance stayed stopped.
    await expect.poll(() => processesMatching(`${marker}-web`).then((p) => p.length), { timeout: 10_000 }).toBe(oneCopy);
    expect((await api(b, tokenB, 'GET', `/api/v1/instances/${idle.id}`)).body.state).toBe('stopped');
    expect(await processesMatching(`${marker}-idle`)).toHaveLength(0);
  }, 90_000);
});
