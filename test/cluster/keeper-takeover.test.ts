/**
 * Two managers on one PostgreSQL database on one host, with the keeper
 * (drivers.process.keeper): when the holder of an instance is SIGKILLed with its process
 * group, the survivor takes it over by adopting it from the dead manager's keeper (the
 * socket its handle names) instead of starting a second copy. A workload of another host's
 * keeper (simulated: its handle names another host) cannot be adopted: the dead manager's
 * keeper stops it at its fence, and only then does the survivor start its own copy.
 */
import { copyFile, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/postgres.js';
import { api, spawnServer, tempDir, type ChildServer } from '../helpers/server.js';
import { createInstance, processesMatching, settledProcessesMatching, waitForState } from '../instances/helpers.js';
import { adminToken, KEEPER_ENV, keeperPid, killGroup, sleep, waitGone } from '../drivers/keeper-helpers.js';

describe('two managers, one host, the keeper', { timeout: 120_000 }, () => {
  let server: ChildServer | undefined;
  const cleanup: (() => void)[] = [];
  const dataDirs: string[] = [];
  const newDataDir = async () => {
    const dir = await tempDir();
    dataDirs.push(dir);
    return dir;
  };
  afterEach(async () => {
    if (server) await killGroup(server).catch(() => undefined);
    for (const fn of cleanup.splice(0)) fn();
    for (const dir of dataDirs.splice(0)) {
      try {
        process.kill(keeperPid(dir), 'SIGKILL');
      } catch {
        /* no keeper left */
      }
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);

  /**
   * Managers A and B (`b`, also the test's `server`) on one fresh PostgreSQL database with short
   * leases, sharing the signing key; A holds a new instance running `shell` (marked).
   */
  async function twoManagers(database: string, shell: string) {
    const databaseUrl = await createTestDatabase(database);
    const env = { ...KEEPER_ENV, CORRAL_DATABASE_URL: databaseUrl, CORRAL_CLUSTER__LEASE_SECONDS: '2', CORRAL_INSTANCES__RECONCILE_SECONDS: '0.5' };
    const [dataA, dataB] = [await newDataDir(), await newDataDir()];
    const a = await spawnServer(dataA, env, ['--role', 'manager'], { detached: true });
    cleanup.push(() => void killGroup(a).catch(() => undefined));
    // Tokens are signed with the key in the data directory: managers of one cluster share it.
    await copyFile(path.join(dataA, 'signing-key.json'), path.join(dataB, 'signing-key.json'));
    server = await spawnServer(dataB, env, ['--role', 'manager'], { detached: true });
    const tokenA = await adminToken(a.url);
    const tokenB = await adminToken(server.url);
    const marker = `${database}-${process.pid}-${Date.now()}`;
    const inst = await createInstance(a, tokenA, { name: 'web', shell: `${shell} # ${marker}` });
    await waitForState(a, tokenA, inst.id, 'running');
    return { databaseUrl, dataA, a, b: server, tokenA, tokenB, inst, marker };
  }

  it('SIGKILL of the holder, the survivor adopts through the keeper socket in the handle instead of restarting (generation unchanged, no duplicate)', async () => {
    const { databaseUrl, a, b, tokenB, inst, marker } = await twoManagers('keeper', 'echo before; sleep 1000');
    const before = await settledProcessesMatching(marker);
    expect(before.length).toBeGreaterThan(0);
    const holder = async () => {
      const c = new pg.Client({ connectionString: databaseUrl });
      await c.connect();
      try {
        return (await c.query<{ manager_id: string }>('select manager_id from instance_leases where instance_id = $1', [inst.id])).rows[0]?.manager_id;
      } finally {
        await c.end();
      }
    };
    const managerA = await holder();

    await killGroup(a);
    await expect.poll(holder, { timeout: 30_000, interval: 250 }).not.toBe(managerA);
    const after = await waitForState(b, tokenB, inst.id, 'running');
    expect(after.generation).toBe(inst.generation);
    expect((await processesMatching(marker)).sort()).toEqual(before);
    // Still supervised by the survivor: a stop reaches the adopted workload.
    expect((await api(b, tokenB, 'POST', `/api/v1/instances/${inst.id}/stop`)).status).toBe(200);
    await waitForState(b, tokenB, inst.id, 'stopped');
    expect(await waitGone(marker)).toEqual([]);
  });

  it('a workload on another host’s keeper: that keeper stops it at its fence, and only then does the survivor start its own copy (never two at once)', async () => {
    const { databaseUrl, dataA, a, b, tokenB, inst, marker } = await twoManagers('keeperfence', 'sleep 1000');
    const first = new Set(await processesMatching(marker));
    expect(first.size).toBeGreaterThan(0);
    // As if A and its keeper ran on another machine: B cannot reach that keeper.
    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    const { rows } = await db.query<{ handle: string }>('select handle from instances where id = $1', [inst.id]);
    const handle = JSON.parse(rows[0]!.handle) as Record<string, unknown>;
    await db.query('update instances set handle = $1 where id = $2', [JSON.stringify({ ...handle, host: 'another-host/boot' }), inst.id]);
    await db.end();

    await killGroup(a);
    // Sampled until B runs it: the first copy and the second never run at the same time.
    const overlaps: number[][] = [];
    let back: { generation: number } | undefined;
    const until = Date.now() + 60_000;
    while (!back && Date.now() < until) {
      const now = await processesMatching(marker);
      if (now.some((p) => first.has(p)) && now.some((p) => !first.has(p))) overlaps.push(now);
      const shown = (await api(b, tokenB, 'GET', `/api/v1/instances/${inst.id}`)).body;
      if (shown.state === 'running' && shown.generation > inst.generation) back = shown;
      else await sleep(100);
    }
    expect(back).toBeDefined();
    expect(overlaps).toEqual([]);
    expect((await processesMatching(marker)).some((p) => first.has(p))).toBe(false);
    // A's keeper stopped it (the fence), with its stop signal: not the survivor, not a crash.
    const exit = JSON.parse(await readFile(path.join(dataA, 'keeper', 'run', String(handle.key), 'exit.json'), 'utf8'));
    expect(exit).toMatchObject({ reason: 'fenced', byKeeper: true });
  });
});
