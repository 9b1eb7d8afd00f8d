/**
 * WebAuthn challenges waiting for their answer, kept server-side: each is bound to what began
 * it (a login session for a registration, a cookie-held ticket for a sign-in), expires after
 * five minutes and is taken at its first use, so a challenge cannot be replayed, guessed
 * or carried to another browser. In memory, like pending OIDC sign-ins: a ceremony must
 * end on the server that began it.
 */
export interface PendingChallenge {
  challenge: string;
  expiresAt: number;
}

const TTL_MS = 5 * 60_000;
/** Sign-in options need no login: a cap keeps a flood of them from growing memory. */
const MAX_PENDING = 10_000;

export class ChallengeBox {
  private readonly pending = new Map<string, PendingChallenge>();

  constructor(private readonly now: () => number = Date.now) {}

  put(key: string, challenge: string): void {
    const now = this.now();
    if (this.pending.size >= MAX_PENDING) this.sweep(now);
    // Still full of live ones: the oldest goes (Map keeps insertion order).
    if (this.pending.size >= MAX_PENDING) this.pending.delete(this.pending.keys().next().value!);
    this.pending.delete(key);
    this.pending.set(key, { challenge, expiresAt: now + TTL_MS });
  }

  /** The challenge under `key`, removed; undefined when there is none or it expired. */
  take(key: string): string | undefined {
    const p = this.pending.get(key);
    if (!p) return undefined;
    this.pending.delete(key);
    return p.expiresAt > this.now() ? p.challenge : undefined;
  }

  private sweep(now: number): void {
    for (const [k, p] of this.pending) if (p.expiresAt <= now) this.pending.delete(k);
  }
}
