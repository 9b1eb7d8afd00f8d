/** The login throttle's rows: reservations that hold under concurrency, on SQLite and PostgreSQL. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/index.js';
import type { ThrottleWindows } from '../../src/store/login-throttle.js';
import { storeDialects } from '../helpers/postgres.js';

const W: ThrottleWindows = { failureWindowMs: 15 * 60_000, pendingStaleMs: 60_000, forgetLocksMs: 24 * 3600_000 };

describe.each(storeDialects)('login throttle on $name', (dialect) => {
  let store: Store;
  beforeAll(async () => {
    store = await dialect.open();
  });
  afterAll(async () => store?.close());
  // As the throttle does: age out what is stale, then reserve.
  const reserve = async (key: string, limit: number, now: number) => {
    await store.loginThrottle.forgetStale([key], now, W);
    return store.loginThrottle.reserve(key, limit, now);
  };

  it('lets exactly `limit` of many concurrent reservations through', async () => {
    const now = 1_000_000;
    const results = await Promise.all(Array.from({ length: 30 }, () => reserve('k1', 4, now)));
    expect(results.filter((r) => r === undefined)).toHaveLength(4);
    expect(await store.loginThrottle.get('k1')).toMatchObject({ pending: 4, failures: 0 });
  });

  it('counts failures, and of several failing at once only the first locks', async () => {
    const now = 2_000_000;
    for (let i = 0; i < 3; i++) expect(await reserve('k2', 3, now)).toBeUndefined();
    const rows = await Promise.all([0, 1, 2].map(() => store.loginThrottle.fail('k2', now)));
    expect(Math.max(...rows.map((r) => r!.failures))).toBe(3);
    const locked = await Promise.all([0, 1, 2].map(() => store.loginThrottle.lock('k2', 3, now, now + 10_000)));
    expect(locked.filter(Boolean)).toHaveLength(1);
    expect(await store.loginThrottle.get('k2')).toEqual({ failures: 0, pending: 0, locks: 1, lockedUntil: now + 10_000 });
    expect(await reserve('k2', 3, now + 9_999)).toMatchObject({ lockedUntil: now + 10_000 });
    expect(await reserve('k2', 3, now + 10_000)).toBeUndefined();
  });

  it('a success gives its place back and may clear the failures', async () => {
    const now = 3_000_000;
    expect(await reserve('k3', 2, now)).toBeUndefined();
    await store.loginThrottle.fail('k3', now);
    expect(await reserve('k3', 2, now)).toBeUndefined();
    expect(await reserve('k3', 2, now)).toBeDefined(); // 1 failure + 1 in flight
    await store.loginThrottle.release('k3', { clearFailures: true });
    expect(await store.loginThrottle.get('k3')).toMatchObject({ failures: 0, pending: 0 });
    // Releasing more than was reserved never goes below zero.
    await store.loginThrottle.release('k3', { clearFailures: false });
    expect((await store.loginThrottle.get('k3'))!.pending).toBe(0);
  });

  it('forgets old failures, reservations left by a crash, and old lock-outs', async () => {
    const now = 4_000_000;
    for (let i = 0; i < 2; i++) {
      await reserve('k4', 3, now);
      await store.loginThrottle.fail('k4', now);
    }
    await reserve('k4', 3, now); // never finished
    expect(await reserve('k4', 3, now + 1000)).toBeDefined();
    // Past the stale-reservation time the crashed one is dropped; the failures still count.
    expect(await reserve('k4', 3, now + W.pendingStaleMs + 1)).toBeUndefined();
    expect(await store.loginThrottle.get('k4')).toMatchObject({ failures: 2, pending: 1 });
    await store.loginThrottle.release('k4', { clearFailures: false });
    // Past the failure window (since the last failure) the failures are forgotten.
    expect(await reserve('k4', 3, now + W.failureWindowMs + 1)).toBeUndefined();
    expect(await store.loginThrottle.get('k4')).toMatchObject({ failures: 0, pending: 1 });
    await store.loginThrottle.release('k4', { clearFailures: false });

    await reserve('k5', 1, now);
    await store.loginThrottle.fail('k5', now);
    expect(await store.loginThrottle.lock('k5', 1, now, now + 1000)).toBe(true);
    expect((await store.loginThrottle.get('k5'))!.locks).toBe(1);
    await reserve('k5', 1, now + W.forgetLocksMs + 1);
    expect((await store.loginThrottle.get('k5'))!.locks).toBe(0);
  });

  it('prunes rows nobody tried for a while, never a held lock', async () => {
    const now = 10_000_000;
    await reserve('old', 5, now - 100_000);
    await store.loginThrottle.release('old', { clearFailures: false });
    await reserve('old-locked', 1, now - 100_000);
    await store.loginThrottle.fail('old-locked', now - 100_000);
    await store.loginThrottle.lock('old-locked', 1, now - 100_000, now + 100_000);
    await store.loginThrottle.prune(now - 50_000, now);
    expect(await store.loginThrottle.get('old')).toBeUndefined();
    expect(await store.loginThrottle.get('old-locked')).toBeDefined();
  });
});
