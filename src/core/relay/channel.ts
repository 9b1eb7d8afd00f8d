/**
 * One relay channel: at most one host (its control connection hears peers come and go) and
 * any number of peers, each with a type. The host pairs with a peer by opening a link for it;
 * frames then pass both ways between that peer and that link, text and binary as they came.
 * A peer's frames before it is paired wait in a small buffer (past it, the peer is not read).
 */
import { randomUUID } from 'node:crypto';
import { errors } from '../errors.js';
import type { RelayConfig } from './config.js';
import { CLOSE, type EventFormat, type Frame, type HostEvent, type PeerEvent, type RelayEnd, type RelaySession } from './ends.js';
import { Flow } from './flow.js';

class Host {
  constructor(
    readonly end: RelayEnd,
    readonly format: EventFormat,
  ) {}

  event(e: HostEvent): void {
    this.end.send({ data: Buffer.from(this.format.host(e)), binary: false }, () => {});
  }
}

class Peer {
  link: Link | undefined;
  readonly buffer: Frame[] = [];
  bufferedBytes = 0;
  paused = false;
  waitTimer: NodeJS.Timeout | undefined;
  gone = false;

  constructor(
    readonly id: string,
    readonly type: string,
    readonly end: RelayEnd,
    readonly format: EventFormat,
  ) {}

  event(e: PeerEvent): void {
    this.end.send({ data: Buffer.from(this.format.peer(e)), binary: false }, () => {});
  }
}

class Link {
  readonly toPeer: Flow;
  readonly toHost: Flow;

  constructor(
    readonly end: RelayEnd,
    readonly peer: Peer,
    highWater: number,
  ) {
    this.toPeer = new Flow(end, peer.end, highWater);
    this.toHost = new Flow(peer.end, end, highWater);
  }
}

export class Channel {
  private host: Host | undefined;
  private hostOwner: string | null = null;
  private readonly peers = new Map<string, Peer>();

  constructor(
    readonly key: string,
    private readonly config: RelayConfig,
    /** Called when the channel holds nothing any more, so the relay can forget it. */
    private readonly onEmpty: () => void,
  ) {}

  get empty(): boolean {
    return !this.host && this.peers.size === 0;
  }

  /** What a listing shows: whether a host is connected, and the peers with their types. */
  describe(): { key: string; host: boolean; owner: string | null; peers: { id: string; type: string; paired: boolean }[] } {
    return {
      key: this.key,
      host: !!this.host,
      owner: this.hostOwner,
      peers: [...this.peers.values()].map((p) => ({ id: p.id, type: p.type, paired: !!p.link })),
    };
  }

  /** Throws unless `owner` could open the host side now: 403 if another's host is connected, else 409. */
  checkHost(owner: string | null): void {
    if (!this.host) return;
    if (this.hostOwner !== owner) throw errors.relayChannelOwned('this relay channel belongs to another user');
    throw errors.relayHostConnected(`channel "${this.key}" already has a host connected`);
  }

  openHost(owner: string | null, end: RelayEnd, format: EventFormat): RelaySession {
    this.checkHost(owner);
    const host = new Host(end, format);
    this.host = host;
    this.hostOwner = owner;
    for (const p of this.peers.values()) host.event({ kind: 'peer-connected', peer: p.id, type: p.type });
    return {
      received: () => {
        /* the control connection only listens */
      },
      closed: () => {
        if (this.host !== host) return;
        this.host = undefined;
        this.hostOwner = null;
        // Without a host, nobody can pair with the peers: they are told and let go.
        for (const p of [...this.peers.values()]) {
          p.link?.end.close(CLOSE.goingAway, 'the host left');
          p.link = undefined;
          p.end.close(CLOSE.goingAway, 'the host left');
        }
        this.forgetIfEmpty();
      },
    };
  }

  /** Throws unless a link for `peerId` could be opened by `owner` now. */
  checkLink(owner: string | null, peerId: string): Peer {
    const peer = this.peers.get(peerId);
    // A link from anyone but the connected host's owner is told nothing about the channel.
    if (!peer || !this.host || (this.hostOwner !== null && this.hostOwner !== owner)) throw errors.relayPeerNotFound(peerId);
    if (peer.link) throw errors.relayPeerPaired(`peer "${peerId}" is already paired`);
    return peer;
  }

  openLink(owner: string | null, peerId: string, end: RelayEnd): RelaySession {
    const peer = this.checkLink(owner, peerId);
    const link = new Link(end, peer, this.config.highWaterBytes);
    peer.link = link;
    clearTimeout(peer.waitTimer);
    peer.event({ kind: 'host-connected' });
    for (const f of peer.buffer.splice(0)) link.toHost.forward(f);
    peer.bufferedBytes = 0;
    if (peer.paused) {
      peer.paused = false;
      peer.end.resume();
    }
    return {
      received: (frame) => {
        if (peer.link === link) link.toPeer.forward(frame);
      },
      closed: () => {
        if (peer.link !== link || peer.gone) return;
        peer.link = undefined;
        peer.event({ kind: 'host-disconnected' });
        this.awaitPairing(peer);
      },
    };
  }

  /** Throws when the channel holds as many peers as it may. */
  checkPeer(): void {
    if (this.peers.size >= this.config.maxPeersPerChannel) {
      throw errors.relayChannelFull(`channel "${this.key}" already has ${this.peers.size} peers`);
    }
  }

  openPeer(type: string, end: RelayEnd, format: EventFormat): RelaySession & { id: string } {
    this.checkPeer();
    const peer = new Peer(randomUUID(), type, end, format);
    this.peers.set(peer.id, peer);
    this.awaitPairing(peer);
    this.host?.event({ kind: 'peer-connected', peer: peer.id, type });
    return {
      id: peer.id,
      received: (frame) => {
        if (peer.link) return peer.link.toHost.forward(frame);
        peer.buffer.push(frame);
        peer.bufferedBytes += frame.data.length;
        if (!peer.paused && (peer.buffer.length >= this.config.bufferFrames || peer.bufferedBytes >= this.config.bufferBytes)) {
          peer.paused = true;
          peer.end.pause();
        }
      },
      closed: () => {
        if (peer.gone) return;
        peer.gone = true;
        clearTimeout(peer.waitTimer);
        this.peers.delete(peer.id);
        peer.link?.end.close(CLOSE.normal, 'the peer left');
        peer.link = undefined;
        this.host?.event({ kind: 'peer-disconnected', peer: peer.id });
        this.forgetIfEmpty();
      },
    };
  }

  /** Closes every connection of the channel (server shutdown). */
  closeAll(code: number, reason: string): void {
    for (const p of this.peers.values()) {
      p.link?.end.close(code, reason);
      p.end.close(code, reason);
    }
    this.host?.end.close(code, reason);
  }

  /** An unpaired peer is closed unless it is paired within peerWaitSeconds. */
  private awaitPairing(peer: Peer): void {
    clearTimeout(peer.waitTimer);
    peer.waitTimer = setTimeout(() => {
      if (!peer.link && !peer.gone) peer.end.close(CLOSE.notPaired, 'no host paired with this peer in time');
    }, this.config.peerWaitSeconds * 1000);
    peer.waitTimer.unref();
  }

  private forgetIfEmpty(): void {
    if (this.empty) this.onEmpty();
  }
}
