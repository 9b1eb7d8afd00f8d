/**
 * Jobs on docker. Each job runs in a job container ("box", job-box.ts) from the image of its
 * runtime, with no network unless the job has it: its files written to a host dir bind-mounted
 * at /work (its output file read back from there once nothing of the job runs), its command and
 * stdin through a read-only control dir. A box's agent shell runs one job after another, so a
 * job on a waiting box costs a few file writes and one line on stdin instead of a create and
 * a start (a few hundred milliseconds).
 *
 * The reuse rules: a box that ran a job belongs to that job's owner and profile (image,
 * network, limits) and is only ever given to them again (job-pool.ts); between two jobs the
 * agent kills every process of the finished one and empties /tmp, /dev/shm and /dev/mqueue,
 * a subshell per job means fresh variables, cwd and umask, and the runner empties /work — but
 * only once the container's cgroup, read on the host, holds nothing but the init and the
 * waiting agent. A box is retired (removed, never reused) after a job that ended in timeout,
 * memory, output-limit or killed, after one whose reset was not clean, after
 * `jobsPerContainer` jobs, after `containerIdleSeconds` idle, and when its cgroup cannot be
 * read or it runs as root (then every box runs one job). Interactive jobs read the
 * container's stdin and are their box's last. docs/docker.md has the threat model.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { errors } from '../../core/errors.js';
import { writeFiles } from '../../core/jobs/files.js';
import type { JobResult, JobRunner, JobSpec, JobStatus, RunningJob } from '../../core/jobs/runner.js';
import type { OutputStream } from '../driver.js';
import { jobOutput, jobResult } from '../job-output.js';
import type { DockerConfig } from './config.js';
import { endInput, exitStatus, removeContainer } from './container-io.js';
import { containerSettings } from './container-spec.js';
import { ensureImage, type Engine } from './engine.js';
import { ExitMarker } from './exit-marker.js';
import { JobBox, jobCommand, profileKey, type BoxOptions, type Profile } from './job-box.js';
import { JobPool } from './job-pool.js';
import { ownedBy } from './labels.js';
import { networkEnsurer } from './network.js';

export interface DockerJobRunnerOptions {
  engine: Engine;
  serverId: string;
  config: DockerConfig;
  /** Host dir under which each box gets its own dir (inside corral's data dir). */
  root: string;
  /** Images kept pre-started, with the default limits. */
  warmImages: string[];
  defaults: Profile['limits'];
  onError?: (err: unknown) => void;
}

/** Statuses after which a box may run another job; any other end retires it. */
const NORMAL_END: ReadonlySet<JobStatus> = new Set(['ok', 'error']);

export class DockerJobRunner implements JobRunner {
  readonly name = 'docker';
  private readonly pool: JobPool;
  private readonly running = new Set<JobBox>();
  private readonly cleanups = new Set<Promise<void>>();
  private readonly boxes: BoxOptions;
  private readonly ensureNetwork: () => Promise<void>;
  private closed = false;

  private constructor(private readonly opts: DockerJobRunnerOptions) {
    this.boxes = { engine: opts.engine, settings: containerSettings(opts.serverId, opts.config), root: opts.root };
    this.ensureNetwork = networkEnsurer(opts.engine, opts.config.network);
    const c = opts.config;
    this.pool = new JobPool({
      images: opts.warmImages.map((image) => ({ image, key: profileKey(this.defaultProfile(image)) })),
      min: c.warmContainers,
      max: Math.max(c.warmContainers, c.maxIdleContainers),
      idleMs: c.containerIdleSeconds * 1000,
      start: (image) => JobBox.start(this.boxes, this.defaultProfile(image)),
      retire: (box) => this.retire(box),
      onError: opts.onError,
    });
  }

  /** A runner; job containers a dead server left behind are removed first. */
  static async create(opts: DockerJobRunnerOptions): Promise<DockerJobRunner> {
    const left = await opts.engine.listContainers({ all: true, filters: ownedBy(opts.serverId, 'job') });
    await Promise.all(left.map((c) => removeContainer(opts.engine.getContainer(c.Id)).catch(() => undefined)));
    await rm(opts.root, { recursive: true, force: true });
    await mkdir(opts.root, { recursive: true, mode: 0o700 });
    const runner = new DockerJobRunner(opts);
    runner.pool.refill();
    return runner;
  }

  /** `last`: the box runs no other job after this one (probes, not a user's job). */
  async run(spec: JobSpec, onOutput: (stream: OutputStream, chunk: Buffer) => void, last = false): Promise<RunningJob> {
    if (this.closed) throw errors.driverUnavailable('the job runner is closed');
    const box = await this.boxFor(spec);
    this.running.add(box);
    const nonce = randomBytes(12).toString('hex');
    try {
      await writeFiles(box.workDir, spec.files);
      writeFileSync(path.join(box.controlDir, 'cmd'), jobCommand(spec.command, spec.keepStdinOpen));
      if (!spec.keepStdinOpen) writeFileSync(path.join(box.controlDir, 'stdin'), spec.stdin ?? '');
    } catch (e) {
      this.running.delete(box);
      this.retire(box);
      throw e;
    }
    const final = last || spec.keepStdinOpen || !box.reusable || box.jobs + 1 >= this.opts.config.jobsPerContainer;
    return this.start(box, spec, nonce, final, onOutput);
  }

  /** The first line `command` prints in a container of `image`, or undefined when it fails. */
  async version(image: string, command: string): Promise<string | undefined> {
    const spec: JobSpec = {
      id: 'version',
      owner: '',
      command,
      files: [],
      keepStdinOpen: false,
      timeoutMs: 20_000,
      limits: { ...this.opts.defaults, outputBytes: 4096 },
      network: false,
      readOnlyPaths: [],
      image,
      maxOutputFileBytes: 0,
    };
    try {
      const r = await (await this.run(spec, () => {}, true)).done;
      if (r.status !== 'ok') return undefined;
      return (r.stdout.toString().trim() || r.stderr.toString().trim()).split('\n')[0]!.trim().slice(0, 200);
    } catch {
      return undefined;
    }
  }

  /** Resolves once every pre-started container asked for so far has started (benchmarks, tests). */
  async warmed(): Promise<void> {
    await this.pool.warmed();
  }

  /** The containers waiting for a job of `owner` (tests). */
  idleOf(owner: string): { id: string; containerId: string; jobs: number }[] {
    return this.pool.idleOf(owner).map((b) => ({ id: b.id, containerId: b.container.id, jobs: b.jobs }));
  }

  /** Resolves once the containers of finished jobs are reset and idle, or retired. */
  settled(): Promise<void> {
    return this.pool.settled();
  }

  async close(): Promise<void> {
    this.closed = true;
    const held = await this.pool.close();
    await Promise.all([...held, ...this.running].map((b) => b.destroy()));
    await Promise.all(this.cleanups);
  }

  private track(cleanup: Promise<void>): void {
    const p = cleanup.catch((e: unknown) => this.opts.onError?.(e)).finally(() => this.cleanups.delete(p));
    this.cleanups.add(p);
  }

  private retire(box: JobBox): void {
    this.track(box.destroy());
    this.pool.refill();
  }

  private profileOf(spec: JobSpec): Profile {
    if (!spec.image) throw errors.badRequest('this runtime has no image for the docker driver (jobs.runtimes[].image)');
    const l = spec.limits;
    return {
      image: spec.image,
      network: spec.network,
      limits: { memoryBytes: l.memoryBytes, pids: l.pids, cpus: l.cpus, fileSizeBytes: l.fileSizeBytes, openFiles: l.openFiles },
    };
  }

  private defaultProfile(image: string): Profile {
    return { image, network: false, limits: this.opts.defaults };
  }

  /** The owner's idle box of this profile, a pre-started one, or a new one. */
  private async boxFor(spec: JobSpec): Promise<JobBox> {
    const profile = this.profileOf(spec);
    const box = await this.pool.take(spec.owner, profileKey(profile), profile.image);
    if (box) return box;
    await ensureImage(this.opts.engine, profile.image, { pull: this.opts.config.pull });
    if (profile.network) await this.ensureNetwork();
    return JobBox.start(this.boxes, profile);
  }

  private start(box: JobBox, spec: JobSpec, nonce: string, last: boolean, onOutput: (stream: OutputStream, chunk: Buffer) => void): RunningJob {
    const out = jobOutput(spec);
    const cg = box.cgroup;
    let reason: JobStatus | undefined;
    /** CPU and memory peak at the job's end (taken before a kill, while the cgroup still exists). */
    let usage: { cpuNs?: number; peak?: number } | undefined;
    const measure = () => (usage ??= cg && { cpuNs: cg.cpuNs(), peak: cg.memoryPeakBytes() });
    const stop = (why: JobStatus) => {
      reason ??= why;
      measure();
      box.kill();
    };
    const keep = (stream: OutputStream, chunk: Buffer) => {
      const part = chunk.length ? out[stream].take(chunk) : undefined;
      if (part) onOutput(stream, part);
      if (out[stream].truncated) stop('output-limit');
    };
    const markers = { stdout: new ExitMarker(nonce), stderr: new ExitMarker(nonce) };
    let markersSeen!: (code: number) => void;
    const marked = new Promise<number>((resolve) => (markersSeen = resolve));
    box.onOutput = (stream, chunk) => {
      keep(stream, markers[stream].push(chunk));
      const { stdout, stderr } = markers;
      if (stdout.code !== undefined && stderr.code !== undefined) markersSeen(stdout.code);
    };
    const stdin = box.io.stream;
    let stdinOpen = spec.keepStdinOpen;
    const endJobInput = () => {
      if (stdinOpen) endInput(box.io);
      stdinOpen = false;
    };

    // Before the go line: the job's CPU is counted from here, its memory peak starts over.
    const cpu0 = cg?.cpuNs();
    const peakFresh = box.jobs === 0 || !!cg?.resetPeak();
    const oom0 = cg?.oomKills() ?? 0;
    box.jobs++;
    const started = performance.now();
    const go = Buffer.from(`${nonce} ${last ? 'last' : 'more'}\n`);
    stdin.write(spec.keepStdinOpen && spec.stdin ? Buffer.concat([go, spec.stdin]) : go);
    const timer = setTimeout(() => stop('timeout'), spec.timeoutMs);

    const done = (async (): Promise<JobResult> => {
      const exit = box.exit.catch(() => ({ code: null, signal: null, oomKilled: false }));
      const first = await Promise.race([exit, marked]);
      measure();
      let end: { code: number | null; signal: string | null; oomKilled: boolean };
      // Whether the box may run another job: the agent's reset and the host's look agree.
      let clean = false;
      if (typeof first === 'number' && !reason && !last) {
        // The agent reported and waits for the next job. Something of this one may still run
        // only if the job forged the marker: then it ends with the container.
        clean = !!markers.stdout.clean && !!markers.stderr.clean && (await settlesIdle(box));
        if (!clean) {
          box.kill();
          await exit;
        }
        end = { ...exitStatus(first, false), oomKilled: (cg?.oomKills() ?? 0) > oom0 };
      } else if (typeof first === 'number' && first < 128 && !reason && !spec.outputPath) {
        // The box's last job: its result is final; the container exits by itself.
        end = { code: first, signal: null, oomKilled: false };
      } else {
        // Killed by corral, by a signal (the memory limit's among them: the engine's exit
        // report says whether it was out of memory), or an output file to read once every
        // process of the job is dead: the container's end.
        end = await exit;
        for (const stream of ['stdout', 'stderr'] as const) keep(stream, markers[stream].flush());
      }
      const wallMs = performance.now() - started;
      clearTimeout(timer);
      this.running.delete(box);
      box.onOutput = () => {};
      const cpuMs = usage?.cpuNs !== undefined && cpu0 !== undefined ? Math.round((usage.cpuNs - cpu0) / 1000) / 1000 : null;
      const memoryPeakBytes = peakFresh ? (usage?.peak ?? null) : null;
      const result = await jobResult(spec, box.workDir, out, { reason, ...end, wallMs, cpuMs, memoryPeakBytes });
      if (clean && NORMAL_END.has(result.status) && !this.closed) {
        this.pool.give(spec.owner, box.key, box.emptyWorkDir().then(
          () => box,
          (e: unknown) => {
            this.retire(box);
            throw e;
          },
        ));
      } else this.retire(box);
      return result;
    })();

    return {
      write: (data) => {
        if (stdinOpen) stdin.write(data);
      },
      endInput: endJobInput,
      kill: () => stop('killed'),
      output: (stream) => out[stream].buffer,
      done,
    };
  }
}

/**
 * Whether the host sees only the box's init and agent left. Processes the agent's reset just
 * killed can take a moment to leave the cgroup on a busy machine: looked at a few times over
 * ~1 s before the box is judged unclean (and retired); a clean box is seen at the first look.
 */
async function settlesIdle(box: { idleOnHost(): boolean }): Promise<boolean> {
  for (let i = 0; i < 50; i++) {
    if (box.idleOnHost()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return box.idleOnHost();
}
