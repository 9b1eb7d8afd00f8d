/**
 * The network swarm tasks with ports are reached on. Swarm publishes ports on every interface
 * (host mode has no host IP, the ingress mesh listens everywhere), so corral publishes none:
 * a task with ports joins this network instead — a bridge with swarm scope, `internal` (no
 * route off the machine, no NAT), traffic between its containers off (the options come from a
 * config-only network, as swarm-scoped bridges take no options of their own), on a subnet
 * the admin picks (drivers.swarm.portsSubnet) so that it overlaps nothing outside. The host
 * is the bridge's gateway and reaches each task directly; port-relay.ts forwards
 * 127.0.0.1:<hostPort> there. A bridge exists per node: tasks with ports run on corral's node.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type Docker from 'dockerode';
import { errors } from '../../core/errors.js';
import { statusOf, type Engine } from '../docker/engine.js';
import { LABEL } from '../docker/labels.js';
import { readHostRoutes, subnetsOverlap, type HostRoute } from './host-routes.js';

export const PORTS_NETWORK = 'corral-swarm-ports';
const CONFIG_NETWORK = `${PORTS_NETWORK}-config`;
const ICC = 'com.docker.network.bridge.enable_icc';

interface NetworkInfo {
  Name: string;
  Driver?: string;
  Internal?: boolean;
  Scope?: string;
  ConfigFrom?: { Network?: string };
  Options?: Record<string, string> | null;
  IPAM?: { Config?: { Subnet?: string }[] | null };
}

async function inspect(engine: Engine, name: string): Promise<NetworkInfo | undefined> {
  try {
    return (await engine.getNetwork(name).inspect()) as NetworkInfo;
  } catch (e) {
    if (statusOf(e) === 404) return undefined;
    throw e;
  }
}

/**
 * The network once the swarm allocated it: until then (a moment after it was made; seconds on
 * a loaded machine) the engine shows it without a driver.
 */
async function allocated(engine: Engine, net: NetworkInfo | undefined): Promise<NetworkInfo | undefined> {
  for (let i = 0; i < 100 && net && !net.Driver; i++) {
    await sleep(100);
    net = await inspect(engine, PORTS_NETWORK);
  }
  return net;
}

async function create(engine: Engine, options: Record<string, unknown>): Promise<void> {
  try {
    await engine.createNetwork({ CheckDuplicate: true, ...options } as unknown as Docker.NetworkCreateOptions);
  } catch (e) {
    if (statusOf(e) !== 409) throw e; // made meanwhile (another manager, a restart)
  }
}

/**
 * Makes the network (and its config) when missing — on a subnet no route of this host already
 * covers; one that exists must keep tasks apart and off the outside.
 */
export async function ensurePortsNetwork(engine: Engine, subnet: string, routes: () => HostRoute[] = readHostRoutes): Promise<void> {
  const existing = await inspect(engine, CONFIG_NETWORK);
  if (!existing) {
    const clash = routes().find((r) => subnetsOverlap(r.subnet, subnet));
    if (clash) {
      throw errors.config(
        `drivers.swarm.portsSubnet ${subnet} overlaps this host's route to ${clash.subnet} (dev ${clash.dev}): tasks' ports would capture those addresses here; pick a subnet no network uses`,
      );
    }
  }
  const config = existing ?? (await create(engine, {
    Name: CONFIG_NETWORK,
    ConfigOnly: true,
    Labels: { [LABEL.kind]: 'network' },
    Options: { [ICC]: 'false' },
    IPAM: { Config: [{ Subnet: subnet }] },
  }), await inspect(engine, CONFIG_NETWORK));
  const net = await allocated(engine, (await inspect(engine, PORTS_NETWORK)) ?? (await create(engine, {
    Name: PORTS_NETWORK,
    Driver: 'bridge',
    Scope: 'swarm',
    Internal: true,
    // No labels: the engine takes nothing but the config from a network that has one.
    ConfigFrom: { Network: CONFIG_NETWORK },
  }), await inspect(engine, PORTS_NETWORK)));
  const why = !config || config.Options?.[ICC] !== 'false'
    ? `its config network "${CONFIG_NETWORK}" does not turn traffic between containers off (${ICC}=false)`
    : !net || net.Driver !== 'bridge' || !net.Internal || net.ConfigFrom?.Network !== CONFIG_NETWORK
      ? `it is not an internal bridge configured from it (${net ? `driver ${net.Driver}, internal ${net.Internal}, config from ${net.ConfigFrom?.Network || 'none'}` : 'not found after it was made'})`
      : undefined;
  if (why) {
    throw errors.config(
      `Docker network "${PORTS_NETWORK}" cannot carry swarm instances' ports: ${why}; remove it (and "${CONFIG_NETWORK}") and corral makes both`,
    );
  }
}

/** The address of a container on the ports network, once it has one. */
export function addressOn(info: Docker.ContainerInspectInfo): string | undefined {
  return info.NetworkSettings.Networks[PORTS_NETWORK]?.IPAddress || undefined;
}
