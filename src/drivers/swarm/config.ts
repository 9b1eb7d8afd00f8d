/** The `drivers.swarm` section of the config (the engine, images and user come from `drivers.docker`). */
import { Type, type Static } from '@sinclair/typebox';

/**
 * Outside the pools Docker gives its own networks (172.17–31.0.0/16 and 192.168.0.0/16 for
 * bridges, 10.0.0.0/8 for swarm overlays), so a network Docker makes later never lands on it,
 * and in the benchmarking block (198.18.0.0/15), which LANs rarely use. It was
 * 172.30.240.0/20: the 14th bridge network on an engine could be given that range.
 */
export const DEFAULT_PORTS_SUBNET = '198.18.240.0/20';
const OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';

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
    portsSubnet: Type.String({ pattern: `^${OCTET}(\\.${OCTET}){3}/(3[0-2]|[12]?\\d)$`, default: DEFAULT_PORTS_SUBNET }),
  },
  { additionalProperties: false, default: {} },
);
export type SwarmConfig = Static<typeof SwarmConfigSchema>;
