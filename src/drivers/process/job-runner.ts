/**
 * Runs jobs on this machine in bubblewrap sandboxes (job-sandbox.ts) that are reused for one
 * owner and one runtime (sandbox-pool.ts).
 *
 * A job is a sequence of steps in one sandbox and one work dir: an optional compile step,
 * then the run — or, for a batch, one run per case. Each step has its own cgroup pass, so
 * its time, memory peak and status are its own, and nothing it started survives into the
 * next step. A compiler that fails ends the job as `compile-error` with the compiler's
 * output; a case that fails does not stop the others.
 *
 * After the job its sandbox goes back to the pool (reset: every trace of the job removed) —
 * unless a step ended in timeout, memory, output-limit or killed, the job had the network,
 * or the sandbox is unsandboxed (drivers.process.sandbox: none) or without cgroups: then it
 * is destroyed, the same as a single-use sandbox (docs/jobs.md, "Reused sandboxes").
 *
 * Without a working bwrap the runner refuses every job (fail closed), unless the admin set
 * drivers.process.sandbox: none: then the same init runs unsandboxed in the host work dir,
 * in its own process group (killed as a whole when the job ends), still in its cgroups.
 * bwrap and init start with an explicit environment, never the server's.
 */
import { mkdir, realpath, rm } from 'node:fs/promises';
import path from 'node:path';
import { errors } from '../../core/errors.js';
import { writeFiles } from '../../core/jobs/files.js';
import { notRun, type JobResult, type JobRunner, type JobSpec, type JobStatus, type RunningJob, type StepResult } from '../../core/jobs/runner.js';
import type { OutputStream } from '../driver.js';
import { outputFileOf, stepResult } from '../job-output.js';
import { sandboxChoice } from './detect.js';
import { etcViewAt } from './etc-view.js';
import { type JobSandbox, type Profile, type RunningStep, type StepOutcome, type StepRun } from './job-sandbox.js';
import { keyringFilter } from './job-seccomp.js';
import { DEFAULT_NETWORK, detectPasta, needsPasta, type NetworkPolicy, type PastaSupport } from './network.js';
import { installInitShell } from './sandbox-init.js';
import { SandboxPool } from './sandbox-pool.js';
import type { Spawner } from './spawner.js';

export type { Profile } from './job-sandbox.js';

export interface ProcessJobRunnerOptions {
  /** Host directory under which each sandbox gets its own dir (its parent must exist). */
  root: string;
  /** Host paths no job may see (corral's data dir). */
  hide: string[];
  /** Where the sandboxes' copy of /etc is kept (etc-view.ts); default: binds from /etc itself. */
  etcRoot?: string;
  /** Sandboxes kept pre-started for jobs with the default profile; 0 = none. */
  warm: number;
  /** The default profile: jobs with these limits can use pre-started sandboxes. */
  defaults: Profile;
  /** Used sandboxes kept for their owner's next job, all owners together; default 4 × warm. */
  maxIdle?: number;
  /** How long a used sandbox waits for its owner's next job; default 60 s. */
  idleSeconds?: number;
  /** Jobs one sandbox runs at most before it is replaced; default 500. */
  jobsPerSandbox?: number;
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
  /** What a job with the network gets (network.ts); default: outbound none, not shared. */
  network?: NetworkPolicy;
}

/** Statuses after which the sandbox is not reused. */
const ABNORMAL: ReadonlySet<JobStatus> = new Set(['timeout', 'memory', 'output-limit', 'killed']);

const resultOf = (o: StepOutcome): StepResult => stepResult({ stdout: o.stdout, stderr: o.stderr }, o);

/** A batch's own fields: the first case that did not end ok sets the status; times add up. */
function batchSummary(cases: StepResult[]): StepResult {
  const cpu = cases.map((c) => c.cpuMs).filter((m): m is number => m !== null);
  const peaks = cases.map((c) => c.memoryPeakBytes).filter((m): m is number => m !== null);
  return {
    ...notRun(cases.find((c) => c.status !== 'ok')?.status ?? 'ok'),
    wallMs: Math.round(cases.reduce((n, c) => n + c.wallMs, 0) * 1000) / 1000,
    cpuMs: cpu.length ? Math.round(cpu.reduce((n, c) => n + c, 0) * 1000) / 1000 : null,
    memoryPeakBytes: peaks.length ? Math.max(...peaks) : null,
  };
}

export class ProcessJobRunner implements JobRunner {
  readonly name = 'process';
  private readonly running = new Set<JobSandbox>();
  private closed = false;

  private constructor(
    private readonly opts: ProcessJobRunnerOptions,
    private readonly pool: SandboxPool,
    private readonly sandboxed: boolean,
    private readonly pasta: PastaSupport | undefined,
  ) {}

  /**
   * A job with the network, in its own namespace, gets outbound through pasta only; with
   * drivers.process.outbound none there is none to give: refused rather than run without.
   */
  admit(spec: JobSpec): void {
    const policy = this.opts.network ?? DEFAULT_NETWORK;
    if (!spec.network || !this.sandboxed || policy.hostNetwork) return;
    if (policy.outbound === 'none') {
      throw errors.forbidden('this server gives jobs no outbound network (drivers.process.outbound: none); a job with network: true cannot run here');
    }
    needsPasta({ policy, pasta: this.pasta, wantsNetwork: true, ports: 0 });
  }

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
    const root = await realpath(opts.root);
    // The first sandboxes should already bind the /etc copy (a few ms to make).
    if (opts.etcRoot) await etcViewAt(opts.etcRoot, opts.onError).ready();
    const policy = opts.network ?? DEFAULT_NETWORK;
    // Only a job with the network needs pasta, and only when there is outbound to give.
    const pasta = choice.kind === 'bwrap' && !policy.hostNetwork && policy.outbound === 'pasta' ? await detectPasta(choice.path, policy.pasta) : undefined;
    const pool = new SandboxPool({
      sandbox: {
        root,
        hide: opts.hide,
        etcRoot: opts.etcRoot,
        bwrap: choice.kind === 'bwrap' ? choice.path : undefined,
        network: { hostNetwork: policy.hostNetwork, pasta: pasta?.path },
        initDir: await installInitShell(path.join(root, '.init')),
        seccomp: keyringFilter(),
        spawner: opts.spawner,
        onError: opts.onError,
      },
      defaults: opts.defaults,
      warm: opts.warm,
      maxIdle: opts.maxIdle ?? 4 * Math.max(1, opts.warm),
      idleMs: (opts.idleSeconds ?? 60) * 1000,
      jobsPerSandbox: opts.jobsPerSandbox ?? 500,
      onError: opts.onError,
    });
    pool.refill();
    return new ProcessJobRunner({ ...opts, root }, pool, choice.kind === 'bwrap', pasta);
  }

  async run(spec: JobSpec, onOutput: (stream: OutputStream, chunk: Buffer) => void): Promise<RunningJob> {
    if (this.closed) throw errors.driverUnavailable('the job runner is closed');
    this.admit(spec);
    const profile = this.profileOf(spec);
    // One owner, one runtime, one profile per sandbox; a job with the network never reuses one.
    const key = JSON.stringify([spec.owner, spec.runtime ?? '', profile]);
    const sb = await this.prepare(await this.pool.acquire(key, profile, !spec.network), spec);
    return this.start(sb, spec, onOutput, () => this.pool.acquire(key, profile, false).then((fresh) => this.prepare(fresh, spec)));
  }

  /** Takes `sb` for the job: running, with the job's files. */
  private async prepare(sb: JobSandbox, spec: JobSpec): Promise<JobSandbox> {
    this.running.add(sb);
    try {
      await writeFiles(sb.workDir, spec.files);
    } catch (e) {
      this.running.delete(sb);
      this.pool.release(sb, false, false);
      throw e;
    }
    return sb;
  }

  /** Idle sandboxes waiting for `owner`'s next job of `runtime` (tests). */
  idleSandboxes(owner: string, runtime: string, spec: JobSpec): { id: string; initPid: number; jobs: number }[] {
    const key = JSON.stringify([owner, runtime, this.profileOf(spec)]);
    return this.pool.idleOf(key).map((sb) => ({ id: sb.id, initPid: sb.initPid, jobs: sb.jobs }));
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.running].map((sb) => sb.destroy()));
    await this.pool.close();
    await rm(this.opts.root, { recursive: true, force: true });
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
   * Runs the job's steps in `sb`. Should init refuse the first step (the previous job's reset,
   * which it does just before, left something: sandbox-init.ts), that sandbox is destroyed
   * and the job starts over in `fresh()`, a sandbox never used — nothing of it had run.
   */
  private start(
    first: JobSandbox,
    spec: JobSpec,
    onOutput: (stream: OutputStream, chunk: Buffer) => void,
    fresh: () => Promise<JobSandbox>,
  ): RunningJob {
    let sb = first;
    const deadline = spec.totalTimeoutMs === undefined ? Infinity : performance.now() + spec.totalTimeoutMs;
    let current: RunningStep | undefined;
    let killed = false;
    // Input for the run step of an interactive job, kept while a compile step runs.
    let main: RunningStep | undefined;
    const early: Buffer[] = [];
    let inputEnded = false;
    let reuse = !spec.network;
    let reap = false;

    // Between giving up a sandbox and getting the fresh one, none is ours to release.
    let released = false;
    /** The sandbox could not be reset: it goes, a fresh one takes the job. */
    const replace = async () => {
      this.running.delete(sb);
      this.pool.release(sb, false, false);
      released = true;
      sb = await fresh();
      released = false;
    };

    const step = async (run: Omit<StepRun, 'outputBytes'>, isMain = false): Promise<StepResult> => {
      if (killed || !sb.alive) return notRun('killed');
      // An interactive step's input flows at once: it cannot be refused, so the reset goes first.
      if (run.keepStdinOpen && sb.owesReset && !(await sb.settle())) await replace();
      if (killed || !sb.alive) return notRun('killed');
      const remaining = deadline - performance.now();
      if (remaining <= 0) return notRun('timeout');
      current = sb.runStep({ ...run, timeoutMs: Math.min(run.timeoutMs, remaining), outputBytes: spec.limits.outputBytes }, onOutput);
      if (isMain) {
        main = current;
        for (const b of early.splice(0)) main.write(b);
        if (inputEnded) main.endInput();
      }
      const outcome = await current.done;
      if (outcome.refused) {
        await replace();
        return step(run, isMain);
      }
      const result = resultOf(outcome);
      if (ABNORMAL.has(result.status) || !outcome.clean) reuse = false;
      if (outcome.killed) reap = true;
      return result;
    };

    const done = (async (): Promise<JobResult> => {
      try {
        let compile: StepResult | undefined;
        if (spec.compile) {
          compile = await step({ command: spec.compile.command, keepStdinOpen: false, timeoutMs: spec.compile.timeoutMs });
          if (compile.status !== 'ok') {
            const note = compile.status === 'error' ? null : `the compile step ended: ${compile.status}`;
            return { ...compile, status: 'compile-error', compile, outputFile: null, note };
          }
        }
        if (spec.cases) {
          const cases: StepResult[] = [];
          for (const c of spec.cases) cases.push(await step({ command: spec.command, stdin: c.stdin, keepStdinOpen: false, timeoutMs: spec.timeoutMs }));
          return { ...batchSummary(cases), compile, cases, ...(await outputFileOf(spec, sb.workDir)) };
        }
        const run = await step({ command: spec.command, stdin: spec.stdin, keepStdinOpen: spec.keepStdinOpen, timeoutMs: spec.timeoutMs }, true);
        return { ...run, compile, ...(await outputFileOf(spec, sb.workDir)) };
      } finally {
        if (!released) {
          this.running.delete(sb);
          this.pool.release(sb, reuse && !killed, reap);
        }
      }
    })();

    return {
      write: (data) => {
        const b = typeof data === 'string' ? Buffer.from(data) : data;
        if (main) main.write(b);
        else early.push(b);
      },
      endInput: () => {
        inputEnded = true;
        main?.endInput();
      },
      kill: () => {
        killed = true;
        current?.stop('killed');
      },
      output: (stream) => current?.output(stream) ?? Buffer.alloc(0),
      done,
    };
  }
}
