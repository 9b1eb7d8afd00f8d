/**
 * Throttles failed logins per user name and per client address. After `maxFailures` misses
 * the key is locked for `lockSeconds`, doubling with each further lock (capped at an hour).
 * A success clears the user's counter (not the address's: one good password must not unlock
 * an address that is guessing at many accounts). Failures older than FAILURE_WINDOW_MS are
 * forgotten, so occasional typos spread over weeks never add up to a lock-out.
 */
import { errors } from '../errors.js';

interface Entry {
  failures: number;
  locks: number;
  lockedUntil: number;
  lastFailure: number;
}

const MAX_LOCK_MS = 3600_000;
const FAILURE_WINDOW_MS = 15 * 60_000;
const FORGET_AFTER_MS = 24 * 3600_000;

export class LoginThrottle {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly maxFailures: number,
    private readonly lockSeconds: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Throws 429 when the user name or the address (when given) is locked. */
  check(user: string, address?: string): void {
    const now = this.now();
    const waits = keys(user, address).map((k) => (this.entries.get(k)?.lockedUntil ?? 0) - now);
    const wait = Math.max(...waits);
    if (wait > 0) throw errors.tooManyLogins(Math.ceil(wait / 1000));
  }

  failed(user: string, address?: string): void {
    const now = this.now();
    this.prune(now);
    for (const key of keys(user, address)) {
      const e = this.entries.get(key) ?? { failures: 0, locks: 0, lockedUntil: 0, lastFailure: 0 };
      if (now - e.lastFailure > FAILURE_WINDOW_MS) e.failures = 0;
      if (now - e.lastFailure > FORGET_AFTER_MS) e.locks = 0;
      e.failures += 1;
      e.lastFailure = now;
      if (e.failures >= this.maxFailures) {
        e.lockedUntil = now + Math.min(this.lockSeconds * 1000 * 2 ** e.locks, MAX_LOCK_MS);
        e.locks += 1;
        e.failures = 0;
      }
      this.entries.set(key, e);
    }
  }

  succeeded(user: string): void {
    this.entries.delete(`user:${user}`);
  }

  private prune(now: number): void {
    if (this.entries.size < 10_000) return;
    for (const [k, e] of this.entries) if (now - e.lastFailure > FORGET_AFTER_MS && e.lockedUntil < now) this.entries.delete(k);
  }
}

const keys = (user: string, address?: string) => (address === undefined ? [`user:${user}`] : [`user:${user}`, `addr:${address}`]);
