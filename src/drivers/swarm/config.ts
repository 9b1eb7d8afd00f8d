/** The `drivers.swarm` section of the config (the engine, images and user come from `drivers.docker`). */
import { Type, type Static } from '@sinclair/typebox';

export const SwarmConfigSchema = Type.Object(
  {
    /**
     * Pin every task to the node of corral's engine, so that stdin reaches workloads (by
     * attaching to the container). Off: the swarm places tasks on any node, and stdin is dropped.
     */
    pinToLocalNode: Type.Boolean({ default: false }),
    /**
     * Run swarm tasks without no-new-privileges when the engine's API is too old to set it
     * (privileges.ts). Off: such an engine refuses swarm instances.
     */
    allowNewPrivileges: Type.Boolean({ default: false }),
    /**
     * Subnet of the internal network tasks with ports are reached on (ports-network.ts): pick
     * one that overlaps no network outside the machine. Tasks with ports run on corral's node.
     */
    portsSubnet: Type.String({ pattern: '^\\d{1,3}(\\.\\d{1,3}){3}/\\d{1,2}$', default: '172.30.240.0/20' }),
  },
  { additionalProperties: false, default: {} },
);
export type SwarmConfig = Static<typeof SwarmConfigSchema>;
