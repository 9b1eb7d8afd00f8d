/**
 * The relay: WebSocket rendezvous channels keyed by name, each with one host side and typed
 * peers (see channel.ts). The native API and the golem-herder adapter both open connections
 * here, each with its own spelling of the events and its own channel names.
 */
import { errors } from '../errors.js';
import type { RelayConfig } from './config.js';
import { Channel } from './channel.js';
import { MemoryClaims, type ChannelClaims } from './claims.js';
import { CLOSE, type EventFormat, type RelayEnd, type RelaySession } from './ends.js';

const DAY_MS = 24 * 3600 * 1000;

export class Relay {
  private readonly channels = new Map<string, Channel>();

  constructor(
    private readonly config: RelayConfig,
    /** Who owns which channel (the store, so a restart forgets no claim). */
    private readonly claims: ChannelClaims = new MemoryClaims(),
  ) {}

  /**
   * Before a host's handshake: claims the channel for `owner`, or throws 403 when it belongs to
   * another user (see claims.ts) and 409 when the owner's host is already connected. An anonymous
   * host (null: golem-herder with auth off) claims nothing and may only host an unclaimed channel.
   */
  async claimHost(key: string, owner: string | null): Promise<void> {
    this.channels.get(key)?.checkHost(owner);
    const now = Date.now();
    const lapseMs = this.config.claimDays * DAY_MS;
    const holder = owner === null ? await this.claims.holder(key, now, lapseMs) : await this.claims.claim(key, owner, now, lapseMs);
    if (holder !== null && holder !== owner) throw errors.relayChannelOwned('this relay channel belongs to another user');
    // A host may have connected while the claim was written.
    this.channels.get(key)?.checkHost(owner);
  }

  /**
   * The host's control connection, after claimHost; `owner` (a user id, or null for anyone)
   * alone may link. When it leaves, the owner's claim counts as used: it lapses from then.
   */
  openHost(key: string, owner: string | null, end: RelayEnd, format: EventFormat): RelaySession {
    const session = this.within(key, (c) => c.openHost(owner, end, format));
    return {
      received: (frame) => session.received(frame),
      closed: () => {
        session.closed();
        // Best effort: a claim not marked here still lapses, only counted from the connect.
        if (owner !== null) this.claims.touch(key, owner, Date.now()).catch(() => undefined);
      },
    };
  }

  /** Throws (404, 409) unless `owner` may link with `peerId` now. */
  checkLink(key: string, owner: string | null, peerId: string): void {
    const channel = this.channels.get(key);
    if (!channel) throw errors.relayPeerNotFound(peerId);
    channel.checkLink(owner, peerId);
  }

  /** The host's side of one pairing with the peer `peerId`. */
  openLink(key: string, owner: string | null, peerId: string, end: RelayEnd): RelaySession {
    return this.within(key, (c) => c.openLink(owner, peerId, end));
  }

  /** Throws (429) when the channel holds as many peers as it may. */
  checkPeer(key: string): void {
    this.channels.get(key)?.checkPeer();
  }

  /** A peer of type `type`; the host hears of it and may pair with it by its id. */
  openPeer(key: string, type: string, end: RelayEnd, format: EventFormat): RelaySession & { id: string } {
    return this.within(key, (c) => c.openPeer(type, end, format));
  }

  /** Every channel that holds a connection. */
  list(): ReturnType<Channel['describe']>[] {
    return [...this.channels.values()].map((c) => c.describe());
  }

  close(): void {
    for (const c of this.channels.values()) c.closeAll(CLOSE.goingAway, 'server shutting down');
    this.channels.clear();
  }

  /** Runs `fn` on the channel, made if needed and forgotten again if `fn` leaves it empty. */
  private within<T>(key: string, fn: (c: Channel) => T): T {
    let c = this.channels.get(key);
    if (!c) {
      const created = new Channel(key, this.config, () => {
        if (this.channels.get(key) === created) this.channels.delete(key);
      });
      this.channels.set(key, created);
      c = created;
    }
    try {
      return fn(c);
    } finally {
      if (c.empty) this.channels.delete(key);
    }
  }
}
