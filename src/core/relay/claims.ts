/**
 * Who owns a relay channel. The first user whose host connects claims the channel's name; from
 * then on only that user's hosts may connect, also while no host is connected (otherwise another
 * user could connect as host in the gap and receive the owner's next peers' frames). A claim
 * lapses `claimDays` after the owner's host last connected or left. The store keeps claims (a
 * restart forgets nothing); MemoryClaims is the same contract for unit tests.
 */

export interface ChannelClaims {
  /**
   * Claims `key` for `ownerId` unless another user holds a claim used within `lapseMs` (0: claims
   * never lapse); returns who holds it afterwards. A claim of `ownerId`'s own is marked used now.
   */
  claim(key: string, ownerId: string, now: number, lapseMs: number): Promise<string>;
  /** Who holds a live claim on `key`, or null. */
  holder(key: string, now: number, lapseMs: number): Promise<string | null>;
  /** Marks `ownerId`'s claim on `key` used now (its host left): the lapse counts from here. */
  touch(key: string, ownerId: string, now: number): Promise<void>;
}

interface Claim {
  owner: string;
  usedAt: number;
}

const live = (c: Claim | undefined, now: number, lapseMs: number): c is Claim => !!c && (lapseMs === 0 || c.usedAt >= now - lapseMs);

export class MemoryClaims implements ChannelClaims {
  private readonly claims = new Map<string, Claim>();

  async claim(key: string, ownerId: string, now: number, lapseMs: number): Promise<string> {
    const c = this.claims.get(key);
    if (live(c, now, lapseMs) && c.owner !== ownerId) return c.owner;
    this.claims.set(key, { owner: ownerId, usedAt: now });
    return ownerId;
  }

  async holder(key: string, now: number, lapseMs: number): Promise<string | null> {
    const c = this.claims.get(key);
    return live(c, now, lapseMs) ? c.owner : null;
  }

  async touch(key: string, ownerId: string, now: number): Promise<void> {
    const c = this.claims.get(key);
    if (c?.owner === ownerId) c.usedAt = now;
  }
}
