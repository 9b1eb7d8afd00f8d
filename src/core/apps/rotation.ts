/**
 * Which `web` copies are in the proxy's rotation. A copy is in once it runs and its port
 * answers (the readiness probe: TCP connect or the app's health path); it leaves when its
 * instance stops running (crash, kill, stop) or when a periodic re-check finds its port
 * silent, and comes back by the same probe. In memory: after a server restart every copy
 * is probed again before it gets traffic.
 */
import type { Store } from '../../store/index.js';
import type { InstanceEvent } from '../instances/events.js';
import { probe } from './readiness.js';

const PROBE_MS = 200;
const PROBE_MAX_MS = 1_000;
const RECHECK_MS = 2_000;

interface Watched {
  ownerId: string;
  name: string;
  healthPath: string | undefined;
}

export class Rotation {
  private readonly watched = new Map<string, Watched>();
  private readonly ready = new Set<string>();
  private readonly probing = new Set<string>();
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly store: Store,
    subscribe: (fn: (e: InstanceEvent) => void) => () => void,
    /** Called whenever the set of ready copies changes (the proxy drops its cached routes). */
    private readonly changed: () => void,
  ) {
    subscribe((e) => this.onEvent(e));
    this.timer = setInterval(() => void this.recheck(), RECHECK_MS);
    this.timer.unref();
  }

  /** Tracks a web copy: probes it whenever it runs and is not in the rotation. */
  watch(id: string, w: Watched): void {
    this.watched.set(id, w);
    void this.probeUntilReady(id);
  }

  unwatch(id: string): void {
    this.watched.delete(id);
    if (this.ready.delete(id)) this.changed();
  }

  /** A switch found the copy ready itself. */
  markReady(id: string): void {
    if (!this.watched.has(id) || this.ready.has(id)) return;
    this.ready.add(id);
    this.changed();
  }

  isReady(id: string): boolean {
    return this.ready.has(id);
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
  }

  private onEvent(e: InstanceEvent): void {
    if (!this.watched.has(e.id)) return;
    if (e.type === 'deleted') return this.unwatch(e.id);
    if (e.state !== 'running') {
      if (this.ready.delete(e.id)) this.changed();
      return;
    }
    void this.probeUntilReady(e.id);
  }

  /** Probes while the copy runs and is out of the rotation, backing off to once a second. */
  private async probeUntilReady(id: string): Promise<void> {
    if (this.probing.has(id)) return;
    this.probing.add(id);
    try {
      for (let wait = PROBE_MS; !this.closed && this.watched.has(id) && !this.ready.has(id); wait = Math.min(wait * 2, PROBE_MAX_MS)) {
        const w = this.watched.get(id)!;
        const r = await this.store.instances.byOwnerAndName(w.ownerId, w.name);
        if (!r || r.id !== id || r.state !== 'running') return;
        const port = r.ports.find((p) => p.name === 'web');
        if (port && (await probe(port.hostPort, w.healthPath))) {
          if (this.watched.has(id)) this.markReady(id);
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, wait).unref());
      }
    } finally {
      this.probing.delete(id);
    }
  }

  /** A ready copy whose port went silent (hung, SIGSTOPped) leaves until it answers again. */
  private async recheck(): Promise<void> {
    for (const id of [...this.ready]) {
      const w = this.watched.get(id);
      if (!w) continue;
      const r = await this.store.instances.byOwnerAndName(w.ownerId, w.name).catch(() => undefined);
      const port = r?.ports.find((p) => p.name === 'web');
      if (port && (await probe(port.hostPort, w.healthPath))) continue;
      if (this.ready.delete(id)) this.changed();
      void this.probeUntilReady(id);
    }
  }
}
