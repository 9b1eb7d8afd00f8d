/**
 * The job containers that wait for a job: pre-started ones per runtime image (default limits,
 * never used yet, given to whoever comes first), and idle ones that ran a job and now belong
 * to that job's owner and profile (image, network, limits) — handed to no one else, ever.
 *
 * Sizing from demand: every job that finds no idle box of its own and takes a pre-started one
 * (or has to wait for a cold start) counts as demand for its image; the pre-started pool of an
 * image holds as many boxes as such jobs came in the last DEMAND_WINDOW_MS, at least `min`,
 * and all boxes waiting (pre-started and idle) stay within `max`: beyond it the box idle
 * longest is retired. An idle box is retired after `idleMs` too.
 */
import type { JobBox } from './job-box.js';

/** How far back demand is counted. */
const DEMAND_WINDOW_MS = 10_000;

export interface JobPoolOptions {
  /** Images kept pre-started (the runtimes' images), with the default profile's key each. */
  images: { image: string; key: string }[];
  /** Pre-started boxes kept per image at least. */
  min: number;
  /** All waiting boxes (pre-started and idle) together at most. */
  max: number;
  idleMs: number;
  start: (image: string) => Promise<JobBox>;
  retire: (box: JobBox) => void;
  onError?: (err: unknown) => void;
}

interface Idle {
  box: JobBox;
  since: number;
  timer: NodeJS.Timeout;
}

const ownerKey = (owner: string, key: string) => `${owner}\n${key}`;

export class JobPool {
  /** Pre-started boxes per image, ready or starting. */
  private readonly warm = new Map<string, Promise<JobBox | undefined>[]>();
  /** Idle boxes per owner and profile, most recently used last. */
  private readonly idle = new Map<string, Idle[]>();
  /** Boxes on their way back (being reset) per owner and profile. */
  private readonly returning = new Map<string, Set<Promise<unknown>>>();
  private readonly demand = new Map<string, number[]>();
  private closed = false;

  constructor(private readonly opts: JobPoolOptions) {}

  /** A box for a job: the owner's idle one of this profile, else a pre-started one (default profile only). */
  async take(owner: string, key: string, image: string): Promise<JobBox | undefined> {
    const k = ownerKey(owner, key);
    for (;;) {
      const mine = this.idle.get(k)?.pop();
      if (mine) {
        clearTimeout(mine.timer);
        if (!mine.box.exited) return mine.box;
        this.opts.retire(mine.box);
        continue;
      }
      // A box of this owner is still being reset: waiting for it beats a cold start.
      const back = this.returning.get(k);
      if (!back?.size) break;
      await Promise.race(back);
    }
    const pool = this.warm.get(image);
    if (!pool || this.opts.images.find((i) => i.image === image)?.key !== key) return undefined;
    this.noteDemand(image);
    // Each take refills: bounded, so a pool whose starts keep failing cannot spin forever.
    for (let tries = pool.length; tries > 0 && pool.length; tries--) {
      const box = await pool.shift()!;
      this.refill();
      if (box && !box.exited) return box;
      if (box) this.opts.retire(box);
    }
    return undefined;
  }

  /** Takes back a box after a job of `owner` (`ready` resolves once it is reset; undefined = retired meanwhile). */
  give(owner: string, key: string, ready: Promise<JobBox | undefined>): void {
    const k = ownerKey(owner, key);
    let back = this.returning.get(k);
    if (!back) this.returning.set(k, (back = new Set()));
    const p: Promise<void> = ready
      .then((box) => {
        if (!box) return;
        if (this.closed || box.exited) return this.opts.retire(box);
        const list = this.idle.get(k) ?? [];
        this.idle.set(k, list);
        const entry: Idle = { box, since: Date.now(), timer: setTimeout(() => this.drop(k, entry), this.opts.idleMs) };
        entry.timer.unref();
        list.push(entry);
        this.trim();
      })
      .catch((e: unknown) => this.opts.onError?.(e))
      .finally(() => {
        back.delete(p);
        if (!back.size && this.returning.get(k) === back) this.returning.delete(k);
      });
    back.add(p);
  }

  /** Tops each image's pre-started boxes up to what demand asks, off the job's critical path. */
  refill(): void {
    if (this.closed) return;
    for (const { image } of this.opts.images) {
      let pool = this.warm.get(image);
      if (!pool) this.warm.set(image, (pool = []));
      const target = Math.min(this.opts.max, Math.max(this.opts.min, this.recentDemand(image)));
      while (pool.length < target && (pool.length < this.opts.min || this.waiting() < this.opts.max)) {
        pool.push(
          new Promise<void>((r) => setImmediate(r))
            .then(() => (this.closed ? undefined : this.opts.start(image)))
            .catch((e: unknown) => {
              this.opts.onError?.(e);
              return undefined;
            }),
        );
      }
    }
  }

  /** Resolves once every pre-started box asked for so far has started. */
  async warmed(): Promise<void> {
    await Promise.all([...this.warm.values()].flat());
  }

  /** How many boxes wait: pre-started (or starting) and idle. */
  waiting(): number {
    let n = 0;
    for (const pool of this.warm.values()) n += pool.length;
    for (const list of this.idle.values()) n += list.length;
    return n;
  }

  /** Idle boxes of an owner (tests, diagnostics). */
  idleOf(owner: string): JobBox[] {
    return [...this.idle.entries()].filter(([k]) => k.startsWith(`${owner}\n`)).flatMap(([, l]) => l.map((e) => e.box));
  }

  /** Resolves once every box given back so far is reset and idle, or retired. */
  async settled(): Promise<void> {
    await Promise.all([...this.returning.values()].flatMap((s) => [...s]));
  }

  /** Stops refilling and hands back every box it holds (the runner destroys them). */
  async close(): Promise<JobBox[]> {
    this.closed = true;
    await this.settled();
    const warm = await Promise.all([...this.warm.values()].flatMap((pool) => pool.splice(0)));
    const idle = [...this.idle.values()].flatMap((list) => list.splice(0)).map((e) => (clearTimeout(e.timer), e.box));
    return [...warm, ...idle].filter((b): b is JobBox => !!b);
  }

  private noteDemand(image: string): void {
    const times = this.demand.get(image) ?? [];
    times.push(Date.now());
    this.demand.set(image, times);
  }

  private recentDemand(image: string): number {
    const times = this.demand.get(image);
    if (!times) return 0;
    const since = Date.now() - DEMAND_WINDOW_MS;
    while (times.length && times[0]! < since) times.shift();
    return times.length;
  }

  private drop(k: string, entry: Idle): void {
    const list = this.idle.get(k);
    const i = list?.indexOf(entry) ?? -1;
    if (i < 0) return;
    list!.splice(i, 1);
    if (!list!.length) this.idle.delete(k);
    this.opts.retire(entry.box);
  }

  /** Over `max` waiting boxes: the idle ones unused longest go first. */
  private trim(): void {
    while (this.waiting() > this.opts.max) {
      let oldest: [string, Idle] | undefined;
      for (const [k, list] of this.idle) for (const e of list) if (!oldest || e.since < oldest[1].since) oldest = [k, e];
      if (!oldest) return;
      clearTimeout(oldest[1].timer);
      this.drop(...oldest);
    }
  }
}
