/**
 * The `relay` section of the config: how long a peer waits to be paired, how much it may send
 * before that, and how many peers one channel holds. Lives here so src/core/config.ts only
 * needs one line for it.
 */
import { Type, type Static } from '@sinclair/typebox';

export const RelayConfigSchema = Type.Object(
  {
    /** A peer not paired with the host's side this long after it connects (or is unpaired) is closed. */
    peerWaitSeconds: Type.Number({ exclusiveMinimum: 0, default: 20 }),
    /** Frames a peer may send before it is paired; past this (or bufferBytes) it is not read until then. */
    bufferFrames: Type.Integer({ minimum: 1, default: 100 }),
    bufferBytes: Type.Integer({ minimum: 1024, default: 1024 * 1024 }),
    /** Bytes in flight from one side to the other before the sending side stops being read. */
    highWaterBytes: Type.Integer({ minimum: 1024, default: 1024 * 1024 }),
    maxPeersPerChannel: Type.Integer({ minimum: 1, default: 256 }),
    /**
     * A channel belongs to the user whose host first claimed it. The claim lapses this many days
     * after that user's host last connected or left (0: never); only then may another user's host
     * claim the name.
     */
    claimDays: Type.Number({ minimum: 0, default: 30 }),
  },
  { additionalProperties: false, default: {} },
);
export type RelayConfig = Static<typeof RelayConfigSchema>;
