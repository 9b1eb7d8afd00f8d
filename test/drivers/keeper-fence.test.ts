/**
 * The keeper's fence (keeper-protocol.ts; docs/instances.md, "The fence"): a workload whose
 * manager stops renewing its deadline is stopped by the keeper past it — stop signal, grace,
 * SIGKILL — and its exit recorded as "fenced", so a manager on another host may start the
 * instance again without a second copy running. Driven through KeeperClient, as a manager does.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { childEnv } from '../../src/core/child-env.js';
import { KeeperClient } from '../../src/drivers/process/keeper-client.js';
import type { ExitRecord } from '../../src/drivers/process/keeper-protocol.js';
import { processesMatching } from '../instances/helpers.js';
import { alive, sleep, standaloneKeeper, waitGone, waitUntil } from './keeper-helpers.js';

describe('the keeper’s fence', { timeout: 60_000 }, () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0)) await fn();
  }, 30_000);

  /** A keeper of its own (stopped, with whatever it keeps, after the test) and a spawn helper. */
  async function keeperFor() {
    const { keeperDir, first, pid } = await standaloneKeeper(cleanup);
    const exitFile = (key: string) => path.join(keeperDir, 'run', key, 'exit.json');
    // Leaves on SIGTERM after a moment, saying so: the stop signal and its grace are used.
    const spawnIn = (client: KeeperClient, key: string, marker: string, fenceAt?: number) =>
      client.spawn(['sh', '-c', `trap 'echo term; exit 0' TERM; while :; do sleep 0.1; done # ${marker}`], {
        pipes: 3,
        detached: true,
        env: childEnv(),
        key,
        exitFile: exitFile(key),
        stop: { signal: 'SIGTERM', graceMs: 5_000, sandboxed: false },
        fenceAt,
      });
    return { keeperDir, first, exitFile, spawnIn };
  }

  it('stops a workload whose deadline passed with no manager renewing it, and records it as fenced; a renewed one keeps running', async () => {
    const { keeperDir, first, exitFile, spawnIn } = await keeperFor();
    const marker = `fence-${process.pid}-${Date.now()}`;
    // Two managers' workloads, both with a deadline 2 s out.
    const second = new KeeperClient(keeperDir);
    const renewed = await spawnIn(first, 'renewed', `${marker}-renewed`, Date.now() + 2_000);
    const quiet = await spawnIn(second, 'quiet', `${marker}-quiet`, Date.now() + 2_000);
    // One manager renews its deadline (as at every lease renewal); the other goes away.
    first.fence(Date.now() + 60_000);
    second.close();

    expect(await waitGone(`${marker}-quiet`, 15_000)).toEqual([]);
    await waitUntil(() => !alive(quiet.pid), 5_000);
    const record = JSON.parse(await readFile(exitFile('quiet'), 'utf8')) as ExitRecord;
    expect(record).toMatchObject({ key: 'quiet', pid: quiet.pid, reason: 'fenced', byKeeper: true });
    // Its stop signal reached it (its trap ran: a clean exit), not a bare SIGKILL.
    expect(record.code).toBe(0);
    // A manager coming back finds it gone.
    expect(await new KeeperClient(keeperDir).take('quiet')).toBeUndefined();

    // Well past the first deadline the renewed one still runs, held by its manager.
    await sleep(1_000);
    expect(alive(renewed.pid)).toBe(true);
    expect(await processesMatching(`${marker}-renewed`)).not.toHaveLength(0);
  });

  it('a manager that takes a workload over sets its own deadline: none (one manager alone) keeps it running for good', async () => {
    const { keeperDir, first, spawnIn } = await keeperFor();
    const marker = `fence-take-${process.pid}-${Date.now()}`;
    const child = await spawnIn(first, 'w', marker, Date.now() + 1_500);
    first.close();
    const next = new KeeperClient(keeperDir);
    const taken = await next.take('w');
    expect(taken?.child.pid).toBe(child.pid);
    await sleep(3_000);
    expect(alive(child.pid)).toBe(true);
    next.close();
  });
});
