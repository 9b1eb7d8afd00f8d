/**
 * The proxy's narrow view of instances: find an instance by owner and name, and start or
 * stop it. The proxy keeps its own data (sharing, idle timeout, activity) in the store;
 * everything about what runs where comes through this seam, so the proxy does not depend on
 * how the supervisor is built.
 *
 * An app (src/core/apps) is a target too, under its own name: it has several upstream
 * copies, the ready copies of its `web` process. Its `ports` are the next copy's each time
 * they are read (round robin), so every request the proxy decides on goes to the next copy
 * and a WebSocket stays on the copy it opened. Its share and idle settings are the app's
 * (keyed by the app's id), so they survive deploys.
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
  /** The first port is the one `/i/{owner}/{instance}/` reaches; an app's: the next ready copy's. */
  ports: TargetPort[];
  /** An app's ready copies, each with its ports (instances have none). */
  copies?: TargetPort[][];
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

/** What the apps core offers (duck-typed like the instances core). */
interface AppsCore {
  resolveTarget(
    ownerName: string,
    name: string,
  ): Promise<{ appId: string; ownerId: string; state: string; copies: { ports: { name: string; hostPort: number }[] }[] } | undefined>;
  setRunning(user: User, ref: string, running: boolean): Promise<void>;
  onChange(fn: () => void): () => void;
}

/**
 * An app's target: `ports` is a getter that hands out the copies in turn. The proxy caches a
 * target briefly and reads `ports` once per request, so requests spread over the copies.
 */
export function balancedTarget(t: Omit<ProxyTarget, 'ports'> & { copies: TargetPort[][] }): ProxyTarget {
  let next = 0;
  const target = { ...t } as ProxyTarget;
  Object.defineProperty(target, 'ports', {
    enumerable: true,
    get: () => (t.copies.length ? t.copies[next++ % t.copies.length]! : []),
  });
  return target;
}

/** Targets backed by the instances core, or none when this corral has no instances core. */
export function instanceTargets(corral: Corral): ProxyTargets | undefined {
  const core = (corral as unknown as { instances?: { service?: InstancesCore } }).instances?.service;
  if (!core || typeof core.resolveTarget !== 'function') return undefined;
  const apps = (corral as unknown as { apps?: AppsCore }).apps;
  /** App ids seen by resolve: start and stop of those go to the apps core. */
  const appNames = new Map<string, string>();
  // Start and stop act as the owner, so the core's own ownership check applies.
  const owner = async (ownerId: string) => {
    const u = await corral.store.users.byId(ownerId);
    if (!u) throw new Error(`owner ${ownerId} of an instance no longer exists`);
    return u;
  };
  return {
    async resolve(ownerName, instanceName) {
      const t = await core.resolveTarget(ownerName, instanceName).catch(() => undefined);
      if (t) return { ...t, ports: t.ports.map((p) => ({ name: p.name, host: '127.0.0.1', port: p.hostPort })) };
      const a = await apps?.resolveTarget(ownerName, instanceName).catch(() => undefined);
      if (!a) return undefined;
      appNames.set(a.appId, instanceName);
      const copies = a.copies.map((c) => c.ports.map((p) => ({ name: p.name, host: '127.0.0.1', port: p.hostPort })));
      return balancedTarget({ instanceId: a.appId, ownerId: a.ownerId, state: a.state, copies });
    },
    async start(t) {
      const app = appNames.get(t.instanceId);
      if (app && apps) await apps.setRunning(await owner(t.ownerId), app, true);
      else await core.start(await owner(t.ownerId), t.instanceId);
    },
    async stop(t) {
      const app = appNames.get(t.instanceId);
      if (app && apps) await apps.setRunning(await owner(t.ownerId), app, false);
      else await core.stop(await owner(t.ownerId), t.instanceId);
    },
    onChange(fn) {
      // Admins see every instance's events.
      core.subscribe({ id: '', name: '', role: 'admin', credits: 0, createdAt: '' }, fn);
      apps?.onChange(fn);
    },
  };
}
