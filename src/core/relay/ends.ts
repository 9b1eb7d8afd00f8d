/**
 * What the relay sees of a connection: frames in, frames out, and reading paused or resumed
 * for flow control. The http layer makes one of these from a WebSocket; core knows nothing of
 * sockets.
 */

/** One message, text or binary, kept as it came. */
export interface Frame {
  data: Buffer;
  binary: boolean;
}

export interface RelayEnd {
  /** Sends a frame; `sent` runs once it has left (or the connection is gone). */
  send(frame: Frame, sent: () => void): void;
  /** Stops reading frames from this connection (TCP backpressure reaches its sender). */
  pause(): void;
  resume(): void;
  close(code: number, reason: string): void;
}

/** What a connection tells the relay after it is opened. */
export interface RelaySession {
  received(frame: Frame): void;
  closed(): void;
}

/** Events the host's control connection hears. */
export type HostEvent = { kind: 'peer-connected'; peer: string; type: string } | { kind: 'peer-disconnected'; peer: string };
/** Events a peer hears, in line with the frames relayed to it. */
export type PeerEvent = { kind: 'host-connected' } | { kind: 'host-disconnected' };

/** How an API spells the events: each is sent as one text frame. */
export interface EventFormat {
  host(e: HostEvent): string;
  peer(e: PeerEvent): string;
}

/** WebSocket close codes the relay uses. */
export const CLOSE = {
  normal: 1000,
  goingAway: 1001,
  /** The peer was not paired in time. */
  notPaired: 4008,
  /** Lost a race checked before the handshake: the peer went away or was paired meanwhile. */
  notFound: 4004,
  conflict: 4009,
} as const;
