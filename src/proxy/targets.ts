/**
 * The proxy's narrow view of instances: find an instance by owner and name, and start or
 * stop it. The proxy keeps its own data (sharing, idle timeout, activity) in the store;
 * everything about what runs where comes through this seam, so the proxy does not depend on
 * how the supervisor is built.
 */
import type { User } from '../core/accounts/index.js';
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
  start(target: Pick<ProxyTarget, 'instanceId' | 'ownerId'>): Promise<void>;
  stop(target: Pick<ProxyTarget, 'instanceId' | 'ownerId'>): Promise<void>;
  /** Calls `fn` whenever some instance changes state, so cached lookups can be dropped. */
  onChange?(fn: () => void): void;
}

/** What the instances core offers (duck-typed so the proxy builds before and after it lands). */
interface InstancesCore {
  resolveTarget(
    ownerName: string,
    instanceName: string,
  ): Promise<{ instanceId: string; ownerId: string; state: string; ports: { name: string; hostPort: number }[] } | undefined>;
  start(user: User, ref: string): Promise<unknown>;
  stop(user: User, ref: string): Promise<unknown>;
  subscribe(user: User, fn: () => void): () => void;
}

/** Targets backed by the instances core, or none when this corral has no instances core. */
export function instanceTargets(corral: Corral): ProxyTargets | undefined {
  const core = (corral as unknown as { instances?: { service?: InstancesCore } }).instances?.service;
  if (!core || typeof core.resolveTarget !== 'function') return undefined;
  // Start and stop act as the owner, so the core's own ownership check applies.
  const owner = async (ownerId: string) => {
    const u = await corral.store.users.byId(ownerId);
    if (!u) throw new Error(`owner ${ownerId} of an instance no longer exists`);
    return u;
  };
  return {
    async resolve(ownerName, instanceName) {
      const t = await core.resolveTarget(ownerName, instanceName).catch(() => undefined);
      if (!t) return undefined;
      return { ...t, ports: t.ports.map((p) => ({ name: p.name, host: '127.0.0.1', port: p.hostPort })) };
    },
    async start(t) {
      await core.start(await owner(t.ownerId), t.instanceId);
    },
    async stop(t) {
      await core.stop(await owner(t.ownerId), t.instanceId);
    },
    onChange(fn) {
      // Admins see every instance's events.
      core.subscribe({ id: '', name: '', role: 'admin', credits: 0, createdAt: '' }, fn);
    },
  };
}
