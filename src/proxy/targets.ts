/**
 * The proxy's narrow view of instances: find an instance by owner and name, and start or
 * stop it. The proxy keeps its own data (sharing, idle timeout, activity) in the store;
 * everything about what runs where comes through this seam, so the proxy does not depend on
 * how the supervisor is built.
 */
import type { Corral } from '../core/corral.js';

export interface TargetPort {
  name: string;
  host: string;
  port: number;
}

export interface ProxyTarget {
  instanceId: string;
  ownerId: string;
  /** Observed state: only `running` is forwarded to. */
  state: string;
  /** The first port is the one `/i/{owner}/{instance}/` reaches. */
  ports: TargetPort[];
}

export interface ProxyTargets {
  resolve(ownerName: string, instanceName: string): Promise<ProxyTarget | undefined>;
  start(instanceId: string): Promise<void>;
  stop(instanceId: string): Promise<void>;
}

/** What the instances core offers (duck-typed so the proxy builds before and after it lands). */
interface InstancesCore {
  resolveTarget(
    ownerName: string,
    instanceName: string,
  ): Promise<{ instanceId: string; ownerId: string; state: string; ports: { name: string; hostPort: number }[] } | undefined>;
  start?(instanceId: string): Promise<unknown>;
  stop?(instanceId: string): Promise<unknown>;
}

/** Targets backed by the instances core, or none when this corral has no instances core. */
export function instanceTargets(corral: Corral): ProxyTargets | undefined {
  const core = (corral as unknown as { instances?: InstancesCore }).instances;
  if (!core || typeof core.resolveTarget !== 'function') return undefined;
  return {
    async resolve(ownerName, instanceName) {
      const t = await core.resolveTarget(ownerName, instanceName).catch(() => undefined);
      if (!t) return undefined;
      return { ...t, ports: t.ports.map((p) => ({ name: p.name, host: '127.0.0.1', port: p.hostPort })) };
    },
    async start(instanceId) {
      await core.start?.(instanceId);
    },
    async stop(instanceId) {
      await core.stop?.(instanceId);
    },
  };
}
