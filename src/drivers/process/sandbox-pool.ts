/**
 * The job sandboxes of one runner: pre-started ones nobody has used yet ("warm", default
 * profile), and used ones waiting for their owner's next job ("idle", keyed by owner, runtime
 * and profile). A sandbox serves one key for life: it is never handed to another owner or
 * runtime (docs/jobs.md, "Reused sandboxes").
 *
 *   acquire(key) → an idle sandbox of that key, else a warm one (now bound to the key), else a
 *                  new one;
 *   release(sb, reusable) → reset and back to idle, or destroyed: after a job that ended in
 *                  timeout, memory, output-limit or killed (the runner says so), after
 *                  `jobsPerSandbox` jobs, when the reset finds something it cannot remove;
 *   idle sandboxes are destroyed after `idleMs`, and the oldest beyond `maxIdle`.
 *
 * The idle set grows with demand: each job of a key running at once brings its sandbox back.
 * Warm sandboxes are topped up after a job ends, not when one is taken (starting a sandbox
 * while a job runs slowed that job by several ms on two cores).
 */
import { JobSandbox, type Profile, type SandboxOptions } from './job-sandbox.js';

export interface PoolOptions {
  sandbox: SandboxOptions;
  /** The profile warm sandboxes are started with. */
  defaults: Profile;
  /** Warm sandboxes to keep. */
  warm: number;
  /** Idle sandboxes kept at most (all keys together). */
  maxIdle: number;
  idleMs: number;
  jobsPerSandbox: number;
  onError?: (err: unknown) => void;
}

const sameProfile = (a: Profile, b: Profile) => JSON.stringify(a) === JSON.stringify(b);

export class SandboxPool {
  private readonly warm: JobSandbox[] = [];
  private readonly starting = new Set<Promise<void>>();
  private readonly idle = new Map<string, JobSandbox[]>();
  /** Sandboxes being reset, by key: a job of that key waits for one (~1 ms) rather than take a warm one. */
  private readonly resetting = new Map<string, { done: Promise<boolean>; claimed: boolean; sb: JobSandbox }[]>();
  private readonly cleanups = new Set<Promise<void>>();
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly opts: PoolOptions) {
    this.sweeper = setInterval(() => this.retireIdle(), Math.min(opts.idleMs, 5000)).unref();
  }

  /** A ready sandbox for `key` with `profile`; `reuse` false: a fresh one, never an idle one. */
  async acquire(key: string, profile: Profile, reuse: boolean): Promise<JobSandbox> {
    if (reuse) {
      const mine = this.idle.get(key);
      while (mine?.length) {
        const sb = mine.pop()!;
        if (!mine.length) this.idle.delete(key);
        if (sb.alive) return this.bind(sb, key);
        this.track(sb.destroy());
      }
      for (const r of this.resetting.get(key) ?? []) {
        if (r.claimed) continue;
        r.claimed = true;
        if ((await r.done) && r.sb.alive) return this.bind(r.sb, key);
      }
    }
    if (sameProfile(profile, this.opts.defaults)) {
      while (this.warm.length) {
        // One that said it is ready first: one still setting up would make the job wait.
        const i = Math.max(0, this.warm.findIndex((sb) => sb.isReady));
        const sb = this.warm.splice(i, 1)[0]!;
        await sb.ready;
        if (sb.isReady && sb.alive) return this.bind(sb, key);
        this.track(sb.destroy());
      }
    }
    const sb = await JobSandbox.start(this.opts.sandbox, profile);
    await sb.ready;
    if (!sb.isReady) {
      await sb.destroy();
      throw new Error(`the job sandbox did not start${sb.startError ? `: ${sb.startError.trim()}` : ''}`);
    }
    return this.bind(sb, key);
  }

  /** After a job: back to idle once reset when `reusable`, else destroyed. */
  release(sb: JobSandbox, reusable: boolean, reap: boolean): void {
    sb.jobs++;
    const keep = reusable && !this.closed && sb.reusable && sb.jobs < this.opts.jobsPerSandbox;
    if (!keep) {
      this.track(sb.destroy().finally(() => this.refill()));
      return;
    }
    const key = sb.key!;
    const entry = { done: sb.reset(reap).then((clean) => clean && !this.closed), claimed: false, sb };
    this.resetting.set(key, [...(this.resetting.get(key) ?? []), entry]);
    this.track(
      entry.done
        .then(async (clean) => {
          const left = this.resetting.get(key)?.filter((r) => r !== entry) ?? [];
          if (left.length) this.resetting.set(key, left);
          else this.resetting.delete(key);
          if (!clean) return sb.destroy();
          sb.lastUsed = Date.now();
          // A job of this key took it straight from the reset.
          if (entry.claimed) return;
          this.idle.set(key, [...(this.idle.get(key) ?? []), sb]);
          this.trimIdle();
        })
        .finally(() => this.refill()),
    );
  }

  /** Tops the warm sandboxes up. */
  refill(): void {
    while (!this.closed && this.warm.length + this.starting.size < this.opts.warm) {
      const starting: Promise<void> = JobSandbox.start(this.opts.sandbox, this.opts.defaults)
        .then(
          (sb) => {
            if (this.closed) this.track(sb.destroy());
            else this.warm.push(sb);
          },
          (e: unknown) => this.opts.onError?.(e),
        )
        .finally(() => this.starting.delete(starting));
      this.starting.add(starting);
    }
  }

  /** Idle sandboxes of `key` (tests). */
  idleOf(key: string): JobSandbox[] {
    return [...(this.idle.get(key) ?? [])];
  }

  /** Destroys every sandbox it holds; running ones are the runner's. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    await Promise.all(this.starting);
    const all = [...this.warm.splice(0), ...[...this.idle.values()].flat()];
    this.idle.clear();
    await Promise.all(all.map((sb) => sb.destroy()));
    await Promise.all(this.cleanups);
  }

  private bind(sb: JobSandbox, key: string): JobSandbox {
    sb.key = key;
    return sb;
  }

  private track(p: Promise<unknown>): void {
    const t: Promise<void> = p
      .then(() => undefined)
      .catch((e: unknown) => this.opts.onError?.(e))
      .finally(() => this.cleanups.delete(t));
    this.cleanups.add(t);
  }

  private retireIdle(): void {
    const before = Date.now() - this.opts.idleMs;
    for (const [key, list] of this.idle) {
      const keep = list.filter((sb) => sb.lastUsed > before && sb.alive);
      for (const sb of list) if (!keep.includes(sb)) this.track(sb.destroy());
      if (keep.length) this.idle.set(key, keep);
      else this.idle.delete(key);
    }
  }

  private trimIdle(): void {
    const all = [...this.idle.values()].flat().sort((a, b) => a.lastUsed - b.lastUsed);
    for (const sb of all.slice(0, Math.max(0, all.length - this.opts.maxIdle))) {
      const list = this.idle.get(sb.key!)!;
      list.splice(list.indexOf(sb), 1);
      if (!list.length) this.idle.delete(sb.key!);
      this.track(sb.destroy());
    }
  }
}
