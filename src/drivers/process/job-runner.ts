/**
 * Runs jobs on this machine, each in its own single-use bubblewrap sandbox and cgroup.
 *
 * Speed: creating a sandbox (namespaces, mounts, cgroup) costs several milliseconds, so a
 * few are started ahead of time. A pre-started sandbox is a `sh` already inside its
 * namespaces and cgroup, its empty work dir bound at /work, blocked reading one line from
 * fd 3. A job then only costs: write its files into that dir, write its command to the
 * control dir, write a line to fd 3 — the waiting shell sources the command. Each sandbox
 * runs exactly one job and is then destroyed with its dir and cgroup (docs/jobs.md).
 *
 * A job whose limits or mounts differ from the pool's profile gets a sandbox started on
 * the spot, the same way.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdir, realpath, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { errors } from '../../core/errors.js';
import { writeFiles } from '../../core/jobs/files.js';
import type { JobResult, JobRunner, JobSpec, JobStatus, RunningJob } from '../../core/jobs/runner.js';
import { SANDBOX_PATH } from '../../core/jobs/runtimes.js';
import type { OutputStream } from '../driver.js';
import { jobOutput, jobResult } from '../job-output.js';
import { createCgroup, type Cgroup, type CgroupLimits } from './cgroups.js';
import { detectSandbox } from './detect.js';
import { launchArgv, type Rlimits } from './launcher.js';
import { signalName } from './proc.js';
import { sandboxArgv } from './sandbox.js';
import { defaultSpawner, type Spawned, type Spawner } from './spawner.js';

/** Where the control dir (the job's command) appears inside the sandbox. */
const CONTROL_MOUNT = '/.corral';
const WORK_MOUNT = '/work';

/**
 * The waiting shell: blocks on fd 3 until the job is ready, closes it, and sources the
 * job's command (no extra exec). EOF without a line means "not needed": exit quietly.
 */
const WAITER = `read -r _ <&3 || exit 0\nexec 3<&-\n. ${CONTROL_MOUNT}/cmd`;

/** What must be equal for a pre-started sandbox to fit a job. */
interface Profile {
  network: boolean;
  readOnlyPaths: string[];
  limits: CgroupLimits;
  rlimits: Rlimits;
}

export interface ProcessJobRunnerOptions {
  /** Host directory under which each sandbox gets its own dir (inside corral's data dir). */
  root: string;
  /** Host paths no job may see (corral's data dir). */
  hide: string[];
  /** Sandboxes kept pre-started for jobs with the default profile; 0 = none. */
  warm: number;
  /** The default profile: jobs with these limits use pre-started sandboxes. */
  defaults: Profile;
  onError?: (err: unknown) => void;
  /** How sandboxes are forked; default: the shared spawn host (spawner.ts). */
  spawner?: Spawner;
}

const sameProfile = (a: Profile, b: Profile) => JSON.stringify(a) === JSON.stringify(b);

/** One single-use sandbox: started, then given one job, then destroyed. */
class Sandbox {
  readonly dir: string;
  readonly workDir: string;
  readonly controlDir: string;
  /** Set by start() before anyone else sees the sandbox. */
  child!: Spawned;
  cgroup: Cgroup | undefined;

  private constructor(root: string) {
    this.dir = path.join(root, randomUUID());
    this.workDir = path.join(this.dir, 'work');
    this.controlDir = path.join(this.dir, 'control');
  }

  get exited(): boolean {
    return this.child.exitInfo !== undefined;
  }

  static async start(bwrap: string, opts: ProcessJobRunnerOptions, profile: Profile): Promise<Sandbox> {
    const sb = new Sandbox(opts.root);
    mkdirSync(sb.workDir, { recursive: true, mode: 0o755 });
    mkdirSync(sb.controlDir, { mode: 0o755 });
    try {
      sb.cgroup = await createCgroup(`job-${path.basename(sb.dir)}`, profile.limits);
      const sandbox = sandboxArgv({
        bwrap,
        command: ['/bin/sh', '-c', WAITER],
        env: { PATH: SANDBOX_PATH, HOME: WORK_MOUNT, TMPDIR: '/tmp', LANG: 'C.UTF-8' },
        cwd: WORK_MOUNT,
        writable: [{ source: sb.workDir, target: WORK_MOUNT }],
        readOnly: [
          { source: sb.controlDir, target: CONTROL_MOUNT },
          ...profile.readOnlyPaths.map((p) => ({ source: p, target: p })),
        ],
        network: profile.network,
        hostname: 'job',
        hide: opts.hide,
      });
      // The sandbox's root is bwrap's private tmpfs: make it read-only too, so a job can
      // write only to /work and /tmp. (Options must precede sandboxArgv's "--".)
      sandbox.splice(sandbox.indexOf('--'), 0, '--remount-ro', '/');
      const argv = launchArgv({ procsFiles: sb.cgroup?.procsFiles, rlimits: profile.rlimits }, sandbox);
      sb.child = await (opts.spawner ?? defaultSpawner()).spawn(argv, { pipes: 4 });
    } catch (e) {
      await sb.destroy();
      throw e;
    }
    return sb;
  }

  get control(): Writable {
    return this.child.stdio[3]!;
  }

  /** Kills everything in it. */
  kill(): void {
    // During start() the child may not exist yet.
    (this.child as Spawned | undefined)?.kill('SIGKILL');
    void this.cgroup?.killAll();
  }

  /** Kills what is left and removes its cgroup and dirs. */
  async destroy(): Promise<void> {
    if (this.child as Spawned | undefined) {
      this.kill();
      await this.child.closed;
    }
    await this.cgroup?.remove().catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true });
  }
}

export class ProcessJobRunner implements JobRunner {
  readonly name = 'process';
  private readonly warm: Promise<Sandbox | undefined>[] = [];
  private readonly running = new Set<Sandbox>();
  private readonly cleanups = new Set<Promise<void>>();
  private closed = false;

  private constructor(
    private readonly bwrap: string,
    private readonly opts: ProcessJobRunnerOptions,
  ) {}

  /** A runner, or undefined (with the reason) when bubblewrap does not work here. */
  static async create(opts: ProcessJobRunnerOptions): Promise<ProcessJobRunner | { unavailable: string }> {
    const support = await detectSandbox();
    if (!support.available || !support.path) return { unavailable: support.reason ?? 'bubblewrap is not available' };
    await rm(opts.root, { recursive: true, force: true });
    await mkdir(opts.root, { recursive: true, mode: 0o700 });
    const runner = new ProcessJobRunner(support.path, { ...opts, root: await realpath(opts.root) });
    runner.refill();
    return runner;
  }

  async run(spec: JobSpec, onOutput: (stream: OutputStream, chunk: Buffer) => void): Promise<RunningJob> {
    if (this.closed) throw errors.driverUnavailable('the job runner is closed');
    const sb = await this.sandboxFor(spec);
    this.running.add(sb);
    try {
      await writeFiles(sb.workDir, spec.files);
      // One tiny file: a synchronous write beats a trip through the busy thread pool.
      writeFileSync(path.join(sb.controlDir, 'cmd'), `${spec.command}\n`);
    } catch (e) {
      this.running.delete(sb);
      await sb.destroy();
      throw e;
    }
    return this.start(sb, spec, onOutput);
  }

  async close(): Promise<void> {
    this.closed = true;
    const idle = await Promise.all(this.warm.splice(0));
    await Promise.all([...idle, ...this.running].map((sb) => sb?.destroy()));
    await Promise.all(this.cleanups);
  }

  private track(cleanup: Promise<void>): void {
    const p = cleanup.catch((e: unknown) => this.opts.onError?.(e)).finally(() => this.cleanups.delete(p));
    this.cleanups.add(p);
  }

  private profileOf(spec: JobSpec): Profile {
    const d = this.opts.defaults;
    return {
      network: spec.network,
      readOnlyPaths: spec.readOnlyPaths,
      limits: { memoryBytes: spec.limits.memoryBytes, pids: spec.limits.pids, cpus: spec.limits.cpus },
      rlimits: { fileSizeBytes: spec.limits.fileSizeBytes, openFiles: spec.limits.openFiles, coreBytes: d.rlimits.coreBytes },
    };
  }

  /** A pre-started sandbox when one fits and is alive, else a new one. */
  private async sandboxFor(spec: JobSpec): Promise<Sandbox> {
    const profile = this.profileOf(spec);
    if (sameProfile(profile, this.opts.defaults)) {
      while (this.warm.length) {
        const sb = await this.warm.shift()!;
        this.refill();
        if (sb && !sb.exited) return sb;
        void sb?.destroy();
      }
    }
    return Sandbox.start(this.bwrap, this.opts, profile);
  }

  /** Tops the pool of pre-started sandboxes up, off the job's critical path. */
  private refill(): void {
    if (this.closed) return;
    while (this.warm.length < this.opts.warm) {
      this.warm.push(
        new Promise<void>((r) => setImmediate(r))
          .then(() => (this.closed ? undefined : Sandbox.start(this.bwrap, this.opts, this.opts.defaults)))
          .catch((e: unknown) => {
            this.opts.onError?.(e);
            return undefined;
          }),
      );
    }
  }

  private start(sb: Sandbox, spec: JobSpec, onOutput: (stream: OutputStream, chunk: Buffer) => void): RunningJob {
    const out = jobOutput(spec);
    let reason: JobStatus | undefined;
    const stop = (why: JobStatus) => {
      reason ??= why;
      sb.kill();
    };
    for (const stream of ['stdout', 'stderr'] as const) {
      sb.child[stream]!.on('data', (chunk: Buffer) => {
        const part = out[stream].take(chunk);
        if (part) onOutput(stream, part);
        if (out[stream].truncated) stop('output-limit');
      });
    }
    const stdin = sb.child.stdin!;
    let stdinOpen = true;
    const endInput = () => {
      if (stdinOpen) stdin.end();
      stdinOpen = false;
    };

    const started = performance.now();
    sb.control.write('go\n');
    if (spec.stdin) stdin.write(spec.stdin);
    if (!spec.keepStdinOpen) endInput();
    const timer = setTimeout(() => stop('timeout'), spec.timeoutMs);

    const done = (async (): Promise<JobResult> => {
      const { code, signal } = await sb.child.closed;
      const wallMs = performance.now() - started;
      clearTimeout(timer);
      this.running.delete(sb);
      // bwrap is the pid namespace's parent: once it is gone, so is every process of the job
      // (the kernel kills a namespace's processes when its init dies). destroy() still sweeps
      // the cgroup, off the result's path.
      const [stats, oom] = await Promise.all([sb.cgroup?.stats(), sb.cgroup?.oomKilled()]);
      // bwrap reports a command killed by signal n as exit code 128 + n.
      const bySignal = code !== null && code > 128 && code < 128 + 65 ? signalName(code - 128) ?? null : null;
      const result = await jobResult(spec, sb.workDir, out, {
        reason,
        oomKilled: !!oom,
        code,
        signal: bySignal ?? signal,
        wallMs,
        cpuMs: stats?.cpuSeconds === undefined ? null : Math.round(stats.cpuSeconds * 1e6) / 1000,
        memoryPeakBytes: stats?.memoryPeakBytes ?? null,
      });
      // Removing the dir and cgroup takes a while: off the result's path, but awaited by close().
      this.track(sb.destroy());
      return result;
    })();

    return {
      write: (data) => {
        if (stdinOpen) stdin.write(data);
      },
      endInput,
      kill: () => stop('killed'),
      output: (stream) => out[stream].buffer,
      done,
    };
  }
}
