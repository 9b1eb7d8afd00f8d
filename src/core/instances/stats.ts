/**
 * Live resource use, as `pm2 monit` and Portainer show it: every `intervalSeconds` the
 * sampler asks each running instance's workload for its stats (the process driver reads its
 * cgroup files, docker asks the engine: no process is started per sample) and keeps the
 * last `keepSeconds` of samples per instance in memory — a fixed ring of (t, CPU %, memory
 * bytes) — plus one ring for the whole server (the instances' sums, corral's own process,
 * the host's memory and load). Nothing is stored: a restarted server starts with empty
 * charts.
 *
 * Which instances run is learned from the instance events (and the store once, at start),
 * so a tick costs one stats read per running instance here and nothing for the rest.
 * Subscribers get each tick's samples at once (the events stream sends them on).
 */
import os from 'node:os';
import { Type, type Static } from '@sinclair/typebox';
import type { Workload } from '../../drivers/driver.js';
import type { Store } from '../../store/index.js';
import type { InstanceRecord } from '../../store/instances.js';
import { systemUser } from '../accounts/system-user.js';
import type { InstancesConfig } from './config.js';
import type { InstanceEvent } from './events.js';
import type { Instances } from './index.js';

export type StatsConfig = InstancesConfig['stats'];

const Nullable = (t: ReturnType<typeof Type.Number>) => Type.Union([t, Type.Null()]);

export const StatsSampleSchema = Type.Object({
  t: Type.Integer({ description: 'ms since the epoch' }),
  cpuPercent: Nullable(Type.Number({ description: 'CPU use since the previous sample; 100 = one core busy' })),
  memoryBytes: Nullable(Type.Number()),
});
export type StatsSample = Static<typeof StatsSampleSchema>;

export const ServerSampleSchema = Type.Object({
  t: Type.Integer(),
  instances: Type.Object({
    running: Type.Integer({ description: 'instances sampled' }),
    cpuPercent: Type.Number({ description: 'their sum' }),
    memoryBytes: Type.Number({ description: 'their sum' }),
  }),
  server: Type.Object({ cpuPercent: Nullable(Type.Number()), memoryBytes: Type.Number({ description: "corral's own resident memory" }) }),
  host: Type.Object({ memoryTotalBytes: Type.Number(), memoryFreeBytes: Type.Number(), load1: Type.Number(), cpus: Type.Integer() }),
});
export type ServerSample = Static<typeof ServerSampleSchema>;

/** One tick's samples, for the events stream. */
export interface StatsTick {
  t: number;
  instances: (StatsSample & { id: string; ownerId: string })[];
  server: ServerSample;
}

/** Samples a ring holds before it first grows. */
const RING_START = 8;

/**
 * A ring of samples: three typed arrays, NaN for "unknown". They start small and double up
 * to `capacity` as samples come: a fresh server with thousands of instances holds no hour of
 * empty history for each.
 */
class SampleRing {
  private t = new Float64Array(RING_START);
  private cpu = new Float32Array(RING_START);
  private mem = new Float64Array(RING_START);
  private next = 0;
  private size = 0;

  constructor(private readonly capacity: number) {}

  push(s: StatsSample): void {
    if (this.size === this.t.length && this.size < this.capacity) this.grow();
    const length = this.t.length;
    this.t[this.next] = s.t;
    this.cpu[this.next] = s.cpuPercent ?? NaN;
    this.mem[this.next] = s.memoryBytes ?? NaN;
    this.next = (this.next + 1) % length;
    this.size = Math.min(this.size + 1, length);
  }

  get last(): number {
    return this.size ? this.t[(this.next - 1 + this.t.length) % this.t.length]! : 0;
  }

  /** The newest sample, if any. */
  latest(): StatsSample | undefined {
    return this.size ? this.at((this.next - 1 + this.t.length) % this.t.length) : undefined;
  }

  /** Oldest first, those after `since` (ms). */
  list(since = 0): StatsSample[] {
    const out: StatsSample[] = [];
    const length = this.t.length;
    for (let k = this.size; k > 0; k--) {
      const i = (this.next - k + length) % length;
      if (this.t[i]! <= since) continue;
      out.push(this.at(i));
    }
    return out;
  }

  private at(i: number): StatsSample {
    const cpu = this.cpu[i]!;
    const mem = this.mem[i]!;
    return { t: this.t[i]!, cpuPercent: Number.isNaN(cpu) ? null : Math.round(cpu * 10) / 10, memoryBytes: Number.isNaN(mem) ? null : mem };
  }

  /** Doubles the arrays (up to capacity); while growing, the ring is full and `next` is 0. */
  private grow(): void {
    const length = Math.min(this.capacity, this.t.length * 2);
    const copy = <A extends Float64Array | Float32Array>(a: A, b: A) => (b.set(a), b);
    this.t = copy(this.t, new Float64Array(length));
    this.cpu = copy(this.cpu, new Float32Array(length));
    this.mem = copy(this.mem, new Float64Array(length));
    this.next = this.size;
  }
}

interface Tracked {
  ownerId: string;
  running: boolean;
  ring: SampleRing;
  /** The previous CPU reading of this run, for the next CPU %. */
  prev: { cpuSeconds: number; at: number } | undefined;
}

/** What the sampler needs of the instances (see Instances in ./index.ts). */
export interface StatsSource {
  list(): Promise<Pick<InstanceRecord, 'id' | 'ownerId' | 'state'>[]>;
  subscribe(fn: (e: InstanceEvent) => void): () => void;
  workload(id: string): Workload | undefined;
}

/**
 * How long an instance whose samples were asked for (`of`: its page, its stats route) counts
 * as watched: sampled every round, ahead of the others, while the budget allows.
 */
export const WATCH_MS = 15 * 60_000;

const percent = (cpuSeconds: number, ms: number) => Math.max(0, (cpuSeconds / (ms / 1000)) * 100);

export class InstanceStats {
  private readonly tracked = new Map<string, Tracked>();
  private readonly serverRows: ServerSample[] = [];
  private readonly capacity: number;
  private readonly listeners = new Set<(tick: StatsTick) => void>();
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe = () => {};
  private sampling = false;
  private prevProcess: { usage: NodeJS.CpuUsage; at: number } | undefined;
  /** Where the next round's slices begin when not every instance is sampled each round. */
  private readonly cursors = { watched: 0, others: 0 };
  /** Instances whose samples were asked for, until when they count as watched (see WATCH_MS). */
  private readonly watchedUntil = new Map<string, number>();

  constructor(
    readonly config: StatsConfig,
    private readonly source: StatsSource,
  ) {
    this.capacity = Math.max(2, Math.ceil(config.keepSeconds / config.intervalSeconds));
  }

  /** Learns what runs now, then samples on a timer until close(). */
  async start(): Promise<void> {
    this.unsubscribe = this.source.subscribe((e) => this.onEvent(e));
    for (const r of await this.source.list()) if (r.state === 'running') this.track(r.id, r.ownerId).running = true;
    this.timer = setInterval(() => void this.sample(), this.config.intervalSeconds * 1000);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
    this.unsubscribe();
    this.listeners.clear();
  }

  /** Calls `fn` with every tick's samples. */
  subscribe(fn: (tick: StatsTick) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** The kept samples of one instance after `since` (ms), oldest first; the instance counts as watched from now (WATCH_MS). */
  of(id: string, since = 0): StatsSample[] {
    const x = this.tracked.get(id);
    if (x) this.watchedUntil.set(id, Date.now() + WATCH_MS);
    return x?.ring.list(since) ?? [];
  }

  /** The kept server-wide samples after `since` (ms), oldest first. */
  ofServer(since = 0): ServerSample[] {
    return this.serverRows.filter((s) => s.t > since);
  }

  /** One round: every running instance's stats, then the server's sums. Exposed for tests. */
  async sample(): Promise<void> {
    if (this.sampling) return; // a slow engine must not pile up rounds
    this.sampling = true;
    try {
      const t = Date.now();
      const running = [...this.tracked].filter(([, x]) => x.running);
      const due = this.due(running, t);
      const samples = (await Promise.all(due.map(([id, x]) => this.sampleOne(id, x, t)))).filter((s) => s !== undefined);
      // The server's sums count every running instance: those not due this round with their newest sample.
      const fresh = new Set(due.map(([id]) => id));
      const newest = running.filter(([id]) => !fresh.has(id)).map(([, x]) => x.ring.latest());
      const tick: StatsTick = { t, instances: samples, server: this.sampleServer(t, [...samples, ...newest]) };
      this.forgetStale(t);
      for (const fn of this.listeners) fn(tick);
    } finally {
      this.sampling = false;
    }
  }

  /**
   * The running instances to sample this round: all of them, unless that is more than
   * `maxSamplesPerSecond` allows; then the watched ones first (whose samples someone asked
   * for lately: the instance page's chart) and the next slice of the others in turn, so each
   * is sampled every few rounds and the rounds cost the same however many instances run
   * (each sample reads cgroup files: 5,000 instances every 5 s were a tenth of a core).
   */
  private due(running: [string, Tracked][], now: number): [string, Tracked][] {
    const budget = Math.max(1, Math.floor(this.config.maxSamplesPerSecond * this.config.intervalSeconds));
    if (running.length <= budget) return running;
    for (const [id, until] of this.watchedUntil) if (until <= now || !this.tracked.has(id)) this.watchedUntil.delete(id);
    if (!this.watchedUntil.size) return this.inTurn(running, budget, 'others');
    const watched = running.filter(([id]) => this.watchedUntil.has(id));
    // More watched than the budget (a listing page asked for every instance's): those in turn.
    if (watched.length >= budget) return this.inTurn(watched, budget, 'watched');
    return [...watched, ...this.inTurn(running.filter(([id]) => !this.watchedUntil.has(id)), budget - watched.length, 'others')];
  }

  /** The next `n` of `list` from where the previous round of this kind left off, wrapping around. */
  private inTurn(list: [string, Tracked][], n: number, kind: keyof typeof this.cursors): [string, Tracked][] {
    if (list.length <= n) return list;
    const start = this.cursors[kind] % list.length;
    this.cursors[kind] = start + n;
    const slice = list.slice(start, start + n);
    return slice.length < n ? [...slice, ...list.slice(0, n - slice.length)] : slice;
  }

  private async sampleOne(id: string, x: Tracked, t: number): Promise<StatsTick['instances'][number] | undefined> {
    const w = this.source.workload(id);
    if (!w) return undefined; // not supervised here (another manager), or between runs
    const s = await w.stats().catch(() => undefined);
    if (!s) return undefined;
    let cpuPercent: number | null = null;
    if (s.cpuSeconds !== undefined) {
      // A smaller reading is a new run (new cgroup or container): start over.
      if (x.prev && t > x.prev.at && s.cpuSeconds >= x.prev.cpuSeconds) cpuPercent = percent(s.cpuSeconds - x.prev.cpuSeconds, t - x.prev.at);
      x.prev = { cpuSeconds: s.cpuSeconds, at: t };
    }
    const sample = { t, cpuPercent, memoryBytes: s.memoryBytes ?? null };
    x.ring.push(sample);
    return { ...sample, id, ownerId: x.ownerId };
  }

  private sampleServer(t: number, samples: (StatsSample | undefined)[]): ServerSample {
    const usage = process.cpuUsage();
    const prev = this.prevProcess;
    const cpuPercent = prev && t > prev.at ? percent((usage.user + usage.system - prev.usage.user - prev.usage.system) / 1e6, t - prev.at) : null;
    this.prevProcess = { usage, at: t };
    const got = samples.filter((s): s is StatsSample => s !== undefined);
    const row: ServerSample = {
      t,
      instances: {
        running: got.length,
        cpuPercent: Math.round(got.reduce((n, s) => n + (s.cpuPercent ?? 0), 0) * 10) / 10,
        memoryBytes: got.reduce((n, s) => n + (s.memoryBytes ?? 0), 0),
      },
      server: { cpuPercent: cpuPercent === null ? null : Math.round(cpuPercent * 10) / 10, memoryBytes: process.memoryUsage.rss() },
      host: { memoryTotalBytes: os.totalmem(), memoryFreeBytes: os.freemem(), load1: Math.round(os.loadavg()[0]! * 100) / 100, cpus: os.availableParallelism() },
    };
    this.serverRows.push(row);
    if (this.serverRows.length > this.capacity) this.serverRows.splice(0, this.serverRows.length - this.capacity);
    return row;
  }

  private onEvent(e: InstanceEvent): void {
    if (e.type === 'deleted') return void this.tracked.delete(e.id);
    const x = this.track(e.id, e.ownerId);
    x.running = e.state === 'running';
    if (!x.running) x.prev = undefined;
  }

  private track(id: string, ownerId: string): Tracked {
    let x = this.tracked.get(id);
    if (!x) {
      x = { ownerId, running: false, ring: new SampleRing(this.capacity), prev: undefined };
      this.tracked.set(id, x);
    }
    return x;
  }

  /** Stopped instances keep their history for `keepSeconds`, then their ring goes. */
  private forgetStale(now: number): void {
    const before = now - this.config.keepSeconds * 1000;
    for (const [id, x] of this.tracked) if (!x.running && x.ring.last < before) this.tracked.delete(id);
  }
}

/** The sampler over this server's instances, started. */
export async function openStats(config: StatsConfig, store: Store, instances: Instances): Promise<InstanceStats> {
  const watcher = systemUser('stats');
  const stats = new InstanceStats(config, {
    list: () => store.instances.list(),
    subscribe: (fn) => instances.service.subscribe(watcher, fn),
    workload: (id) => instances.supervisor.workload(id),
  });
  await stats.start();
  return stats;
}
