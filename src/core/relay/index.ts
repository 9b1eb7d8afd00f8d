/** The relay: rendezvous channels with one host side and typed peers (see channel.ts). */
export { Relay } from './relay.js';
export { RelayConfigSchema, type RelayConfig } from './config.js';
export { MemoryClaims, type ChannelClaims } from './claims.js';
export { CLOSE, type EventFormat, type Frame, type HostEvent, type PeerEvent, type RelayEnd, type RelaySession } from './ends.js';
