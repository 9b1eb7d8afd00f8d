/**
 * Rows of the login throttle (policy in src/core/accounts/throttle.ts). Every change is one
 * conditional UPDATE, so concurrent attempts — in one process or on several servers sharing
 * PostgreSQL — cannot all read "below the limit" before any of them is counted: the database
 * decides, row by row, which reservation fits.
 *
 * - `failures`: attempts that failed in the current window;
 * - `pending`: attempts reserved and still being checked (they count against the limit);
 * - `locked_until`: ms; attempts before then are refused; `locks`: lock-outs so far (the
 *   next one lasts longer).
 */
import type { Db } from './database.js';

export interface LoginThrottleTable {
  key: string;
  failures: number;
  pending: number;
  locks: number;
  locked_until: number;
  last_failure: number;
  last_attempt: number;
}

export interface ThrottleRow {
  failures: number;
  pending: number;
  locks: number;
  lockedUntil: number;
}

/** How long each kind of state is kept, in ms. */
export interface ThrottleWindows {
  /** failures older than this (since the last one) are forgotten */
  failureWindowMs: number;
  /** a reservation older than this was left by a crash or a hung check: dropped */
  pendingStaleMs: number;
  /** lock-outs are forgotten (the next lock is short again) this long after the last failure */
  forgetLocksMs: number;
}

const toRow = (r: Pick<LoginThrottleTable, 'failures' | 'pending' | 'locks' | 'locked_until'>): ThrottleRow => ({
  failures: Number(r.failures),
  pending: Number(r.pending),
  locks: Number(r.locks),
  lockedUntil: Number(r.locked_until),
});

export class LoginThrottleStore {
  constructor(private readonly db: Db) {}

  /**
   * Reserves one attempt on `key` when it is not locked and failures plus attempts in flight
   * stay below `limit`. Returns undefined when reserved, else the row that refused it.
   */
  async reserve(key: string, limit: number, now: number, w: ThrottleWindows): Promise<ThrottleRow | undefined> {
    await this.db
      .insertInto('login_throttle')
      .values({ key, failures: 0, pending: 0, locks: 0, locked_until: 0, last_failure: 0, last_attempt: now })
      .onConflict((oc) => oc.column('key').doNothing())
      .execute();
    await this.forgetStale(key, now, w);
    const r = await this.db
      .updateTable('login_throttle')
      .set((eb) => ({ pending: eb('pending', '+', 1), last_attempt: now }))
      .where('key', '=', key)
      .where('locked_until', '<=', now)
      .where((eb) => eb(eb('failures', '+', eb.ref('pending')), '<', limit))
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) > 0) return undefined;
    const row = await this.db.selectFrom('login_throttle').selectAll().where('key', '=', key).executeTakeFirst();
    return row ? toRow(row) : { failures: limit, pending: 0, locks: 0, lockedUntil: 0 };
  }

  /** Drops what has aged out of its window. Each statement re-checks its own condition. */
  private async forgetStale(key: string, now: number, w: ThrottleWindows): Promise<void> {
    await this.db
      .updateTable('login_throttle')
      .set({ failures: 0 })
      .where('key', '=', key)
      .where('failures', '>', 0)
      .where('last_failure', '<', now - w.failureWindowMs)
      .where('locked_until', '<=', now)
      .execute();
    await this.db
      .updateTable('login_throttle')
      .set({ pending: 0 })
      .where('key', '=', key)
      .where('pending', '>', 0)
      .where('last_attempt', '<', now - w.pendingStaleMs)
      .execute();
    await this.db
      .updateTable('login_throttle')
      .set({ locks: 0 })
      .where('key', '=', key)
      .where('locks', '>', 0)
      .where('last_failure', '<', now - w.forgetLocksMs)
      .where('locked_until', '<=', now)
      .execute();
  }

  /** Gives a reservation back without counting it (the check succeeded, or never ran). */
  async release(key: string, opts: { clearFailures: boolean }): Promise<void> {
    await this.db
      .updateTable('login_throttle')
      .set((eb) => ({
        pending: eb.case().when('pending', '>', 0).then(eb('pending', '-', 1)).else(0).end(),
        ...(opts.clearFailures && { failures: 0 }),
      }))
      .where('key', '=', key)
      .execute();
  }

  /** Turns a reservation into a counted failure; returns the row after it. */
  async fail(key: string, now: number): Promise<ThrottleRow | undefined> {
    const row = await this.db
      .updateTable('login_throttle')
      .set((eb) => ({
        pending: eb.case().when('pending', '>', 0).then(eb('pending', '-', 1)).else(0).end(),
        failures: eb('failures', '+', 1),
        last_failure: now,
      }))
      .where('key', '=', key)
      .returning(['failures', 'pending', 'locks', 'locked_until'])
      .executeTakeFirst();
    return row && toRow(row);
  }

  /**
   * Locks `key` until `until` when it has reached `limit` and is not locked yet; of several
   * attempts failing at once, only the first locks (and counts one more lock-out).
   */
  async lock(key: string, limit: number, now: number, until: number): Promise<boolean> {
    const r = await this.db
      .updateTable('login_throttle')
      .set((eb) => ({ locked_until: until, locks: eb('locks', '+', 1), failures: 0 }))
      .where('key', '=', key)
      .where('failures', '>=', limit)
      .where('locked_until', '<=', now)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async get(key: string): Promise<ThrottleRow | undefined> {
    const row = await this.db.selectFrom('login_throttle').selectAll().where('key', '=', key).executeTakeFirst();
    return row && toRow(row);
  }

  /** Deletes rows nobody has tried for since `before` and that hold no lock. */
  async prune(before: number, now: number): Promise<void> {
    await this.db
      .deleteFrom('login_throttle')
      .where('last_attempt', '<', before)
      .where('last_failure', '<', before)
      .where('locked_until', '<', now)
      .execute();
  }
}
