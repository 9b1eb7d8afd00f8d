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
 *
 * Without a working bwrap the runner refuses every job (fail closed), unless the admin set
 * drivers.process.sandbox: none: then the same waiting shell runs unsandboxed in the host
 * work dir, in its own process group (killed as a whole when the job ends), still in its
 * cgroup. bwrap and that shell start with an explicit environment, never the server's: bwrap
 * stays the sandbox's pid 1 for the whole job, and a job can read pid 1's environ.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdir, realpath, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Socket } from 'node:net';
import { childEnv } from '../../core/child-env.js';
import { errors } from '../../core/errors.js';
import { writeFiles } from '../../core/jobs/files.js';
import type { JobResult, JobRunner, JobSpec, JobStatus, RunningJob } from '../../core/jobs/runner.js';
import { SANDBOX_PATH } from '../../core/jobs/runtimes.js';
import type { OutputStream } from '../driver.js';
import { jobOutput, jobResult } from '../job-output.js';
import { createCgroup, type Cgroup, type CgroupLimits } from './cgroups.js';
import { sandboxChoice } from './detect.js';
import { etcViewAt } from './etc-view.js';
import { launchArgv, type Rlimits } from './launcher.js';
import { killQuietly, signalName } from './proc.js';
import { sandboxArgv } from './sandbox.js';
import { defaultSpawner, type Spawned, type SpawnOptions, type Spawner } from './spawner.js';

/** Where the control dir (the job's command) appears inside the sandbox. */
const CONTROL_MOUNT = '/.corral';
const WORK_MOUNT = '/work';

/**
 * The waiting shell, on fd 3 (a socket pair, like every pipe node makes, so both ways): says
 * it is ready (every namespace and mount is in place once it runs), blocks until the job is
 * ready, closes fd 3, and sources the job's command (no extra exec). EOF without a line
 * means "not needed": exit quietly.
 */
const waiter = (controlDir: string) => `echo >&3\nread -r _ <&3 || exit 0\nexec 3<&-\n. ${controlDir}/cmd`;

/** A job's whole environment; `home` is its work dir as the job sees it. */
const jobEnv = (home: string, tmp: string) => ({ PATH: SANDBOX_PATH, HOME: home, TMPDIR: tmp, LANG: 'C.UTF-8' });

/** What must be equal for a pre-started sandbox to fit a job. */
interface Profile {
  network: boolean;
  readOnlyPaths: string[];
  limits: CgroupLimits;
  rlimits: Rlimits;
}

export interface ProcessJobRunnerOptions {
  /** Host directory under which each sandbox gets its own dir (its parent must exist). */
  root: string;
  /** Host paths no job may see (corral's data dir). */
  hide: string[];
  /** Where the sandboxes' copy of /etc is kept (etc-view.ts); default: binds from /etc itself. */
  etcRoot?: string;
  /** Sandboxes kept pre-started for jobs with the default profile; 0 = none. */
  warm: number;
  /** The default profile: jobs with these limits use pre-started sandboxes. */
  defaults: Profile;
  onError?: (err: unknown) => void;
  /** How sandboxes are forked; default: the shared spawn host (spawner.ts). */
  spawner?: Spawner;
  /**
   * false → run jobs UNSANDBOXED (drivers.process.sandbox: none). Default: in bwrap, and
   * without a working bwrap every job is refused.
   */
  sandbox?: boolean;
  /** Path of bwrap (drivers.process.bwrap); default: found on PATH. */
  bwrap?: string;
}

/** Sets the parent-death signal of an unsandboxed job's shell (util-linux), as the process driver does. */
const SETPRIV = existsSync('/usr/bin/setpriv') ? '/usr/bin/setpriv' : undefined;

const sameProfile = (a: Profile, b: Profile) => JSON.stringify(a) === JSON.stringify(b);

/** One single-use sandbox: started, then given one job, then destroyed. */
class Sandbox {
  readonly dir: string;
  readonly workDir: string;
  readonly controlDir: string;
  /** Set by start() before anyone else sees the sandbox. */
  child!: Spawned;
  cgroup: Cgroup | undefined;
  /** Resolves once the waiting shell runs (or the sandbox died trying). */
  ready!: Promise<void>;
  isReady = false;
  /** Runs without bwrap, in its own process group (drivers.process.sandbox: none). */
  unsandboxed = false;

  private constructor(root: string) {
    this.dir = path.join(root, randomUUID());
    this.workDir = path.join(this.dir, 'work');
    this.controlDir = path.join(this.dir, 'control');
  }

  get exited(): boolean {
    return this.child.exitInfo !== undefined;
  }

  /** `bwrap` undefined: unsandboxed (the admin's explicit choice, see the header). */
  static async start(bwrap: string | undefined, opts: ProcessJobRunnerOptions, profile: Profile): Promise<Sandbox> {
    const sb = new Sandbox(opts.root);
    mkdirSync(sb.workDir, { recursive: true, mode: 0o755 });
    mkdirSync(sb.controlDir, { mode: 0o755 });
    try {
      sb.cgroup = await createCgroup(`job-${path.basename(sb.dir)}`, profile.limits);
      sb.unsandboxed = !bwrap;
      const { argv, options } = bwrap ? sb.inBwrap(bwrap, opts, profile) : sb.onHost(profile);
      sb.child = await (opts.spawner ?? defaultSpawner()).spawn(argv, options);
      // Unsandboxed, nothing else ends the job's background processes when its shell exits
      // (in bwrap the pid namespace dies with its init): end its process group then.
      if (sb.unsandboxed) void sb.child.exited.then(() => killQuietly(-sb.child.pid, 'SIGKILL'));
      const said = new Promise<void>((r) => sb.control.once('data', () => r()));
      sb.ready = Promise.race([said, sb.child.exited]).then(() => {
        sb.isReady = true;
      });
    } catch (e) {
      await sb.destroy();
      throw e;
    }
    return sb;
  }

  /** The launch of a sandboxed waiting shell: bwrap itself gets only the base environment. */
  private inBwrap(bwrap: string, opts: ProcessJobRunnerOptions, profile: Profile): { argv: string[]; options: SpawnOptions } {
    const sandbox = sandboxArgv({
      bwrap,
      command: ['/bin/sh', '-c', waiter(CONTROL_MOUNT)],
      env: jobEnv(WORK_MOUNT, '/tmp'),
      cwd: WORK_MOUNT,
      writable: [{ source: this.workDir, target: WORK_MOUNT }],
      readOnly: [
        { source: this.controlDir, target: CONTROL_MOUNT },
        ...profile.readOnlyPaths.map((p) => ({ source: p, target: p })),
      ],
      network: profile.network,
      hostname: 'job',
      hide: opts.hide,
      etc: opts.etcRoot ? etcViewAt(opts.etcRoot, opts.onError).current() : undefined,
    });
    // The sandbox's root is bwrap's private tmpfs: make it read-only too, so a job can
    // write only to /work and /tmp. (Options must precede sandboxArgv's "--".)
    sandbox.splice(sandbox.indexOf('--'), 0, '--remount-ro', '/');
    const argv = launchArgv({ procsFiles: this.cgroup?.procsFiles, rlimits: profile.rlimits }, sandbox);
    return { argv, options: { pipes: 4, env: childEnv() } };
  }

  /** The launch of an unsandboxed waiting shell (drivers.process.sandbox: none), in its own group. */
  private onHost(profile: Profile): { argv: string[]; options: SpawnOptions } {
    const argv = launchArgv({ procsFiles: this.cgroup?.procsFiles, rlimits: profile.rlimits, setpriv: SETPRIV }, ['/bin/sh', '-c', waiter(this.controlDir)]);
    return { argv, options: { pipes: 4, detached: true, env: jobEnv(this.workDir, this.workDir), cwd: this.workDir } };
  }

  /** fd 3 of the waiting shell. */
  get control(): Socket {
    return this.child.stdio[3]!;
  }

  /** Kills everything in it. */
  kill(): void {
    // During start() the child may not exist yet.
    const child = this.child as Spawned | undefined;
    if (child && this.unsandboxed && !child.exitInfo) killQuietly(-child.pid, 'SIGKILL');
    child?.kill('SIGKILL');
    void this.cgroup?.killAll();
  }

  /** Kills what is left and removes its cgroup and dirs. */
  async destroy(): Promise<void> {
    if (this.child as Spawned | undefined) {
      this.kill();
      await this.child.closed;
    }
    // Files first: on a tmpfs their pages are charged to the cgroup, which then goes cleanly.
    await rm(this.dir, { recursive: true, force: true });
    await this.cgroup?.remove().catch(() => undefined);
  }
}

export class ProcessJobRunner implements JobRunner {
  readonly name = 'process';
  /** Pre-started sandboxes, ready or still setting up. */
  private readonly warm: Sandbox[] = [];
  /** Sandboxes being started for the pool. */
  private readonly starting = new Set<Promise<void>>();
  private readonly running = new Set<Sandbox>();
  private readonly cleanups = new Set<Promise<void>>();
  private closed = false;

  private constructor(
    /** undefined: unsandboxed, chosen by the admin (drivers.process.sandbox: none). */
    private readonly bwrap: string | undefined,
    private readonly opts: ProcessJobRunnerOptions,
  ) {}

  /**
   * A runner, or why there is none: without a working bubblewrap jobs are refused (the
   * message names the fixes) unless the admin turned the sandbox off.
   */
  static async create(opts: ProcessJobRunnerOptions): Promise<ProcessJobRunner | { unavailable: string }> {
    const choice = await sandboxChoice(opts.sandbox !== false, opts.bwrap);
    if (choice.kind === 'refused') return { unavailable: choice.message };
    // The root may sit in a shared dir (/dev/shm): created fresh and exclusively (mkdir fails
    // if someone slipped in a file or symlink since the rm), so only this server can use it.
    try {
      await rm(opts.root, { recursive: true, force: true });
      await mkdir(opts.root, { mode: 0o700 });
    } catch (e) {
      throw errors.config(`cannot create the jobs' work dir ${opts.root}: ${(e as Error).message}`);
    }
    // The first sandboxes should already bind the /etc copy (a few ms to make).
    if (opts.etcRoot) await etcViewAt(opts.etcRoot, opts.onError).ready();
    const runner = new ProcessJobRunner(choice.kind === 'bwrap' ? choice.path : undefined, { ...opts, root: await realpath(opts.root) });
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
      this.track(sb.destroy().finally(() => this.refill()));
      throw e;
    }
    return this.start(sb, spec, onOutput);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.starting);
    await Promise.all([...this.warm.splice(0), ...this.running].map((sb) => sb.destroy()));
    await Promise.all(this.cleanups);
    await rm(this.opts.root, { recursive: true, force: true });
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

  /**
   * A pre-started sandbox when one fits and is alive (a ready one first: one still setting
   * up would make the job wait for its mounts), else a new one.
   */
  private async sandboxFor(spec: JobSpec): Promise<Sandbox> {
    const profile = this.profileOf(spec);
    if (sameProfile(profile, this.opts.defaults)) {
      while (this.warm.length) {
        const i = Math.max(0, this.warm.findIndex((sb) => sb.isReady));
        const sb = this.warm.splice(i, 1)[0]!;
        await sb.ready;
        if (!sb.exited) return sb;
        this.track(sb.destroy());
      }
    }
    const sb = await Sandbox.start(this.bwrap, this.opts, profile);
    await sb.ready;
    return sb;
  }

  /**
   * Tops the pool of pre-started sandboxes up. Called when a job's sandbox is gone, not when
   * it is taken: starting a sandbox while the job runs slowed the job by several ms (both
   * compete for the same two cores and kernel locks), and the pool has spares meanwhile.
   */
  private refill(): void {
    while (!this.closed && this.warm.length + this.starting.size < this.opts.warm) {
      const starting: Promise<void> = Sandbox.start(this.bwrap, this.opts, this.opts.defaults)
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
      this.track(sb.destroy().finally(() => this.refill()));
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
