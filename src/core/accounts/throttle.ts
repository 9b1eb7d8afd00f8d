/**
 * The one throttle in front of every password check: the API login, the login form, the
 * pixelated login and agent check, a password change's current password and golem-herder's
 * token password.
 *
 * An attempt is counted *before* the password is verified: it reserves a place on three keys
 * — its (subject, address) pair, its address, its subject — and holds it while argon2 runs,
 * so N concurrent guesses cannot all pass the check before the first failure is written
 * (in-flight attempts count as failures until they succeed). A key that reaches its limit
 * is locked for `lockSeconds`, doubling with each further lock-out up to an hour.
 *
 * - pair (`auth.loginMaxFailures`, 5): one person's typos lock that user from that address
 *   only; others behind the same address (an office NAT, 127.0.0.1) are not affected;
 * - address (`auth.loginMaxFailuresPerAddress`, 4× that): one address guessing at many users;
 * - subject (`auth.loginMaxFailuresPerUser`, 4× that): many addresses guessing at one user.
 *
 * Success clears the pair's and the subject's failures, not the address's (one good password
 * must not unlock an address that is guessing at many accounts). Failures are forgotten 15
 * minutes after the last one; lock-out doubling a day after. State lives in the store, so a
 * lock-out survives a restart and holds across servers. Whether the user exists makes no
 * difference to any of this (keys use the name as given).
 */
import { errors } from '../errors.js';
import type { LoginThrottleStore, ThrottleWindows } from '../../store/login-throttle.js';

export interface ThrottleLimits {
  /** failures per (subject, address) before a lock-out */
  perPair: number;
  /** failures per address, across subjects */
  perAddress: number;
  /** failures per subject, across addresses */
  perSubject: number;
  /** first lock-out; doubles each time */
  lockSeconds: number;
}

const MAX_LOCK_MS = 3600_000;
export const THROTTLE_WINDOWS: ThrottleWindows = {
  failureWindowMs: 15 * 60_000,
  pendingStaleMs: 60_000,
  forgetLocksMs: 24 * 3600_000,
};
const PRUNE_EVERY_MS = 3600_000;

interface Key {
  key: string;
  limit: number;
  /** a success forgets this key's failures */
  clearOnSuccess: boolean;
}

export class LoginThrottle {
  private lastPrune = 0;

  constructor(
    private readonly store: LoginThrottleStore,
    private readonly limits: ThrottleLimits,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Runs `check` (a password verification) as one counted attempt by `subject` from
   * `address`, or throws 429 with Retry-After without running it. Returns what `check` says.
   * `subject` names what is being guessed at, e.g. `login:alice` (callers prefix it so a user
   * name can never stand for something else).
   */
  async attempt(subject: string, address: string, check: () => Promise<boolean>): Promise<boolean> {
    const keys = this.keysFor(subject, address);
    const now = this.now();
    await this.maybePrune(now);
    await this.store.forgetStale(keys.map((k) => k.key), now, THROTTLE_WINDOWS);
    const held: Key[] = [];
    for (const k of keys) {
      const refused = await this.store.reserve(k.key, k.limit, now);
      if (!refused) {
        held.push(k);
        continue;
      }
      await Promise.all(held.map((h) => this.store.release(h.key, { clearFailures: false })));
      // Locked: until the lock ends. Full of attempts still being checked: they end in a moment.
      throw errors.tooManyLogins(Math.max(1, Math.ceil((refused.lockedUntil - now) / 1000)));
    }
    let ok: boolean;
    try {
      ok = await check();
    } catch (e) {
      await Promise.all(held.map((h) => this.store.release(h.key, { clearFailures: false })));
      throw e;
    }
    if (ok) await Promise.all(held.map((h) => this.store.release(h.key, { clearFailures: h.clearOnSuccess })));
    else await Promise.all(held.map((h) => this.failed(h, this.now())));
    return ok;
  }

  /** How long `subject` from `address` must wait now, in seconds (0: may try). */
  async retryAfter(subject: string, address: string): Promise<number> {
    const now = this.now();
    let wait = 0;
    for (const k of this.keysFor(subject, address)) {
      const row = await this.store.get(k.key);
      if (row) wait = Math.max(wait, row.lockedUntil - now);
    }
    return Math.max(0, Math.ceil(wait / 1000));
  }

  private async failed(k: Key, now: number): Promise<void> {
    const row = await this.store.fail(k.key, now);
    if (!row || row.failures < k.limit) return;
    const lockMs = Math.min(this.limits.lockSeconds * 1000 * 2 ** row.locks, MAX_LOCK_MS);
    await this.store.lock(k.key, k.limit, now, now + lockMs);
  }

  private keysFor(subject: string, address: string): Key[] {
    const addr = addressKey(address);
    // The address first: an address that is locked touches no other row.
    return [
      { key: `addr|${addr}`, limit: this.limits.perAddress, clearOnSuccess: false },
      { key: `subject|${subject}`, limit: this.limits.perSubject, clearOnSuccess: true },
      { key: `pair|${subject}|${addr}`, limit: this.limits.perPair, clearOnSuccess: true },
    ];
  }

  private async maybePrune(now: number): Promise<void> {
    if (now - this.lastPrune < PRUNE_EVERY_MS) return;
    this.lastPrune = now;
    await this.store.prune(now - THROTTLE_WINDOWS.forgetLocksMs, now);
  }
}

/**
 * The address a limit applies to: IPv4 as is (an IPv4-mapped IPv6 address as its IPv4), IPv6
 * by its /64 — one subscriber usually holds a whole /64 and could otherwise change address
 * at every guess.
 */
export function addressKey(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return mapped[1]!;
  if (!ip.includes(':') || ip.includes('.')) return ip;
  const [head = '', tail] = ip.toLowerCase().split('%')[0]!.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}
