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
   * Reserves one attempt on `key` (a new key starts with it) when the key is not locked and
   * failures plus attempts in flight stay below `limit`: one upsert, decided by the database.
   * Returns undefined when reserved, else the row that refused it.
   */
  async reserve(key: string, limit: number, now: number): Promise<ThrottleRow | undefined> {
    const r = await this.db
      .insertInto('login_throttle')
      .values({ key, failures: 0, pending: 1, locks: 0, locked_until: 0, last_failure: 0, last_attempt: now })
      .onConflict((oc) =>
        oc
          .column('key')
          .doUpdateSet((eb) => ({ pending: eb('login_throttle.pending', '+', 1), last_attempt: now }))
          .where('login_throttle.locked_until', '<=', now)
          .where((eb) => eb(eb('login_throttle.failures', '+', eb.ref('login_throttle.pending')), '<', limit)),
      )
      .executeTakeFirst();
    if (Number(r.numInsertedOrUpdatedRows ?? 0) > 0) return undefined;
    const row = await this.db.selectFrom('login_throttle').selectAll().where('key', '=', key).executeTakeFirst();
    return row ? toRow(row) : { failures: limit, pending: 0, locks: 0, lockedUntil: 0 };
  }

  /**
   * Drops what has aged out on these keys, in one statement (each row is judged on its values
   * before the update): failures past their window, reservations left by a crash or a hung
   * check, lock-out counts a day old.
   */
  async forgetStale(keys: string[], now: number, w: ThrottleWindows): Promise<void> {
    const failuresOld = now - w.failureWindowMs;
    const pendingOld = now - w.pendingStaleMs;
    const locksOld = now - w.forgetLocksMs;
    await this.db
      .updateTable('login_throttle')
      .set((eb) => ({
        failures: eb.case().when(eb.and([eb('last_failure', '<', failuresOld), eb('locked_until', '<=', now)])).then(0).else(eb.ref('failures')).end(),
        pending: eb.case().when('last_attempt', '<', pendingOld).then(0).else(eb.ref('pending')).end(),
        locks: eb.case().when(eb.and([eb('last_failure', '<', locksOld), eb('locked_until', '<=', now)])).then(0).else(eb.ref('locks')).end(),
      }))
      .where('key', 'in', keys)
      .where((eb) =>
        eb.or([
          eb.and([eb('failures', '>', 0), eb('last_failure', '<', failuresOld), eb('locked_until', '<=', now)]),
          eb.and([eb('pending', '>', 0), eb('last_attempt', '<', pendingOld)]),
          eb.and([eb('locks', '>', 0), eb('last_failure', '<', locksOld), eb('locked_until', '<=', now)]),
        ]),
      )
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
