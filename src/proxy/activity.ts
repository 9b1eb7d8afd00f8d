/**
 * Last proxied activity per instance (HTTP requests and WebSocket frames both ways), kept
 * in memory on the hot path and written to the store on each culler tick, and the idle
 * culler itself: an instance with an idle timeout that has seen no traffic for that long
 * is stopped, like JupyterHub's idle culler. An instance never proxied counts as active
 * from the moment the culler first saw it running, so a fresh start is not culled at once.
 */
import type { Logger } from 'pino';
import type { ProxyStore } from '../store/proxy.js';
import type { ProxyTargets } from './targets.js';

export class Activity {
  private readonly pending = new Map<string, number>();
  private readonly last = new Map<string, number>();
  private readonly firstSeenRunning = new Map<string, number>();

  touch(instanceId: string): void {
    const t = Date.now();
    this.last.set(instanceId, t);
    this.pending.set(instanceId, t);
  }

  lastActivity(instanceId: string, stored: number | null): number | undefined {
    const mem = this.last.get(instanceId);
    if (mem !== undefined && (stored === null || mem > stored)) return mem;
    return stored ?? undefined;
  }

  /** Writes what happened since the last flush. */
  async flush(store: ProxyStore): Promise<void> {
    if (!this.pending.size) return;
    const batch = new Map(this.pending);
    this.pending.clear();
    await store.recordActivity(batch);
  }

  /** One culler pass: stops every running instance idle longer than its timeout. */
  async cull(store: ProxyStore, targets: ProxyTargets, log: Logger): Promise<string[]> {
    await this.flush(store);
    const stopped: string[] = [];
    const now = Date.now();
    for (const s of await store.cullable()) {
      const t = await targets.resolve(s.ownerName, s.instanceName).catch(() => undefined);
      if (!t || t.instanceId !== s.instanceId || t.state !== 'running') {
        this.firstSeenRunning.delete(s.instanceId);
        continue;
      }
      if (!this.firstSeenRunning.has(s.instanceId)) this.firstSeenRunning.set(s.instanceId, now);
      const since = Math.max(this.lastActivity(s.instanceId, s.lastActivityAt) ?? 0, this.firstSeenRunning.get(s.instanceId)!);
      if (now - since < s.idleTimeoutSeconds * 1000) continue;
      log.info({ instance: `${s.ownerName}/${s.instanceName}`, idleSeconds: Math.round((now - since) / 1000) }, 'culling idle instance');
      await targets.stop(t).then(
        () => stopped.push(s.instanceId),
        (e: unknown) => log.warn({ err: e, instance: s.instanceId }, 'could not cull idle instance'),
      );
      this.firstSeenRunning.delete(s.instanceId);
    }
    return stopped;
  }
}
