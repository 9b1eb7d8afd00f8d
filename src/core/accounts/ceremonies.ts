/**
 * Sign-in ceremonies waiting for their second half — a WebAuthn challenge (bound to the login
 * session of a registration, or to a cookie-held ticket of a sign-in), an OIDC sign-in's state
 * (bound to a browser cookie) — kept server-side, in the database: a ceremony begun on one
 * manager ends on any other sharing the database. Each expires and is taken at its first use,
 * so it cannot be replayed, guessed or carried to another browser.
 */
import { createHash } from 'node:crypto';
import type { CeremonyStore } from '../../store/ceremonies.js';

/** Keys hold cookie secrets (a sign-in ticket): the database sees only their hash. */
const stored = (key: string) => createHash('sha256').update(key).digest('base64url');

/**
 * Some begin without a login (sign-in options): a flood of them must not grow the table for
 * long. Every SWEEP_EVERY puts (per server), expired ones go and, beyond MAX_PENDING, those
 * closest to expiry.
 */
const MAX_PENDING = 10_000;
const SWEEP_EVERY = 200;

export class Ceremonies {
  private puts = 0;

  constructor(
    private readonly store: CeremonyStore,
    private readonly now: () => number = Date.now,
  ) {}

  async put(key: string, value: string, ttlMs: number): Promise<void> {
    const now = this.now();
    await this.store.put(stored(key), value, now + ttlMs);
    if (++this.puts % SWEEP_EVERY === 0) await this.store.sweep(now, MAX_PENDING);
  }

  /** The value under `key`, removed; undefined when there is none or it expired. */
  take(key: string): Promise<string | undefined> {
    return this.store.take(stored(key), this.now());
  }
}
