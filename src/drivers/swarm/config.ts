/** The `drivers.swarm` section of the config (the engine, images and user come from `drivers.docker`). */
import { Type, type Static } from '@sinclair/typebox';

export const SwarmConfigSchema = Type.Object(
  {
    /**
     * Pin every task to the node of corral's engine, so that stdin reaches workloads (by
     * attaching to the container). Off: the swarm places tasks on any node, and stdin is dropped.
     */
    pinToLocalNode: Type.Boolean({ default: false }),
  },
  { additionalProperties: false, default: {} },
);
export type SwarmConfig = Static<typeof SwarmConfigSchema>;
