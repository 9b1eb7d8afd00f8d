/**
 * The job service: checks a request against the runtime and the admin's limits, queues it
 * through the scheduler, runs it with the job runner, streams output to attached clients,
 * and keeps the result in the store until its retention ends.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { Logger } from 'pino';
import type { OutputStream } from '../../drivers/driver.js';
import { queuedJobRow, type JobFinish, type JobRow, type JobSummaryRow, type JobsTable } from '../../store/jobs.js';
import type { Store } from '../../store/index.js';
import type { User } from '../accounts/types.js';
import { errors } from '../errors.js';
import type { JobsConfig } from './config.js';
import { checkPath, validateFiles } from './files.js';
import { caseView, checkCases, stepView, type CompareMode, type StoredSteps } from './steps.js';
import { notRun, type JobResult, type JobRunner, type JobSpec, type RunningJob } from './runner.js';
import { Runtimes, type RuntimeDetection } from './runtimes.js';
import { Scheduler } from './scheduler.js';
import type { JobRequest, JobSummary, JobView } from './schemas.js';
import type { JobGate, JobTicket } from '../credits/gates.js';

/** What an attached client hears. */
export interface JobListener {
  output(stream: OutputStream, chunk: Buffer): void;
  exit(job: JobView): void;
}

export interface Attachment {
  /** The job as it is now: output so far, and the result when it has ended. */
  job: JobView;
  /** Writes to the job's stdin. */
  write(data: Buffer | string): void;
  detach(): void;
}

interface ActiveJob {
  id: string;
  userId: string;
  userName: string;
  runtime: string;
  spec: JobSpec;
  row: JobsTable;
  state: 'queued' | 'running';
  /** The row's insert; the result is written only after it. */
  inserted: Promise<void>;
  startedAt: number | null;
  running: RunningJob | undefined;
  killed: boolean;
  /** Why it was killed, when not by its own limits (the server shutting down). */
  killNote?: string;
  /** The `running` state's write; the result is written after it. */
  marked: Promise<void>;
  pendingInput: Buffer[];
  listeners: Set<JobListener>;
  /** Quotas and credits: settled once the job ends (or never starts). */
  ticket: JobTicket | undefined;
  /** A batch's expected outputs (by case) and how they are compared. */
  expected: (string | undefined)[];
  compare: CompareMode;
  start(): void;
  done: Promise<JobView>;
  resolve(view: JobView): void;
}

const iso = (ms: number | null | undefined) => (ms == null ? null : new Date(Number(ms)).toISOString());

function summaryOf(r: JobSummaryRow): JobSummary {
  return {
    id: r.id,
    user: r.user_name,
    runtime: r.runtime,
    state: r.state,
    status: r.status as JobSummary['status'],
    exitCode: r.exit_code,
    signal: r.signal,
    stdoutTruncated: !!r.stdout_truncated,
    stderrTruncated: !!r.stderr_truncated,
    wallMs: r.wall_ms,
    cpuMs: r.cpu_ms,
    memoryPeakBytes: r.memory_peak_bytes == null ? null : Number(r.memory_peak_bytes),
    note: r.note,
    createdAt: iso(r.created_at)!,
    startedAt: iso(r.started_at),
    finishedAt: iso(r.finished_at),
    expiresAt: iso(r.expires_at),
  };
}

function viewOf(r: JobRow): JobView {
  const steps = r.steps ? (JSON.parse(r.steps) as StoredSteps) : {};
  return {
    ...summaryOf(r),
    compile: steps.compile ?? null,
    cases: steps.cases ?? null,
    stdout: r.stdout ? Buffer.from(r.stdout).toString('utf8') : '',
    stderr: r.stderr ? Buffer.from(r.stderr).toString('utf8') : '',
    outputFile:
      r.output_name && r.output_data
        ? { name: r.output_name, mimeType: r.output_mime ?? 'application/octet-stream', content: Buffer.from(r.output_data).toString('base64') }
        : null,
  };
}

export class JobService {
  private readonly active = new Map<string, ActiveJob>();
  private readonly scheduler: Scheduler<ActiveJob>;
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;
  private gate: JobGate | undefined;

  private constructor(
    private readonly config: JobsConfig,
    private readonly store: Store,
    private readonly runner: JobRunner,
    readonly runtimes: Runtimes,
    private readonly log: Logger,
  ) {
    const poolSize = config.poolSize || os.availableParallelism();
    this.scheduler = new Scheduler(poolSize, config.queueLength, config.perUserConcurrency);
    const every = Math.min(config.retentionSeconds, 60) * 1000;
    this.sweeper = setInterval(() => void this.sweep(), every).unref();
  }

  static async open(config: JobsConfig, store: Store, runner: JobRunner, log: Logger, detection?: RuntimeDetection): Promise<JobService> {
    const runtimes = await Runtimes.detect(config.runtimes, detection);
    const now = Date.now();
    const lost = await store.jobs.markInterrupted(now, now + config.retentionSeconds * 1000);
    if (lost) log.warn({ jobs: lost }, 'jobs left unfinished by the previous server were marked killed');
    log.info({ runtimes: runtimes.list().map((r) => `${r.name} ${r.version ?? ''}`.trim()) }, 'job runtimes');
    return new JobService(config, store, runner, runtimes, log);
  }

  /** Quotas and credits, asked before a job is queued. */
  useGate(gate: JobGate): void {
    this.gate = gate;
  }

  get stats() {
    return this.scheduler.stats;
  }

  /** Checks and queues a job; `done` resolves with its result. */
  async submit(user: User, req: JobRequest): Promise<{ id: string; done: Promise<JobView> }> {
    if (this.closed) throw errors.driverUnavailable('the server is shutting down');
    const spec = this.specFor(user, req);
    // A runner that cannot run it at all (no sandbox here) refuses now: 503, not a killed job.
    this.runner.admit?.(spec);
    // Credits are reserved for every step: the compile and each case have their own timeout.
    const budget = (spec.compile?.timeoutMs ?? 0) + spec.timeoutMs * (spec.cases?.length ?? 1);
    const ticket = await this.gate?.admitJob(user, { id: spec.id, runtime: req.runtime, timeoutMs: budget });
    if (ticket && ticket.timeoutMs < budget) {
      if (spec.compile || spec.cases) spec.totalTimeoutMs = ticket.timeoutMs;
      else spec.timeoutMs = ticket.timeoutMs;
    }
    const row = this.queuedRow(user, req, spec);
    let resolve!: (v: JobView) => void;
    const done = new Promise<JobView>((r) => (resolve = r));
    const job: ActiveJob = {
      id: spec.id,
      userId: user.id,
      userName: user.name,
      runtime: req.runtime,
      spec,
      row,
      state: 'queued',
      inserted: Promise.resolve(),
      marked: Promise.resolve(),
      startedAt: null,
      running: undefined,
      killed: false,
      pendingInput: [],
      listeners: new Set(),
      ticket,
      expected: (req.cases ?? []).map((c) => c.expected),
      compare: req.compare ?? 'exact',
      start: () => void this.execute(job),
      done,
      resolve,
    };
    // Admission first (a full queue refuses before anything is written); the result is
    // written only after the row, so a fast job cannot overtake its own insert.
    this.active.set(job.id, job);
    try {
      this.scheduler.submit(job);
    } catch (e) {
      this.active.delete(job.id);
      ticket?.finished({ started: false, wallMs: 0, status: 'refused' });
      throw e;
    }
    // A job that found a free slot has started already: its row goes in as running, so it
    // needs no `running` write of its own (one SQLite write less per job; see execute()).
    if (job.state === 'running') Object.assign(row, { state: 'running', started_at: job.startedAt });
    job.inserted = this.store.jobs.insert(row);
    try {
      await job.inserted;
    } catch (e) {
      job.killed = true;
      job.running?.kill();
      throw e;
    }
    return { id: spec.id, done };
  }

  /** The job as the user may see it: 404 for other users' jobs (admins see all). */
  async get(user: User, id: string): Promise<JobView> {
    const a = this.active.get(id);
    if (a) {
      if (!mayAccess(user, a.userId)) throw errors.jobNotFound(id);
      return this.activeView(a);
    }
    const r = await this.store.jobs.byId(id);
    if (!r || !mayAccess(user, r.user_id)) throw errors.jobNotFound(id);
    return viewOf(r);
  }

  /** The user's jobs, newest first (an admin asking for `all` sees everyone's). */
  async list(user: User, opts: { all?: boolean; limit?: number } = {}): Promise<JobSummary[]> {
    const everyone = opts.all && user.role === 'admin';
    const rows = await this.store.jobs.list(everyone ? undefined : user.id, opts.limit ?? 100);
    return rows.map((r) => {
      const a = this.active.get(r.id);
      if (!a) return summaryOf(r);
      const { stdout: _o, stderr: _e, outputFile: _f, ...summary } = this.activeView(a);
      return summary;
    });
  }

  /** Streams a job's output to `listener`; a finished job just gets its result. */
  async attach(user: User, id: string, listener: JobListener): Promise<Attachment> {
    const a = this.active.get(id);
    if (!a) return { job: await this.get(user, id), write: () => {}, detach: () => {} };
    if (!mayAccess(user, a.userId)) throw errors.jobNotFound(id);
    a.listeners.add(listener);
    return {
      job: this.activeView(a),
      write: (data) => this.input(a, typeof data === 'string' ? Buffer.from(data) : data),
      detach: () => {
        a.listeners.delete(listener);
        // An interactive job's stdin stays open while someone may still type into it.
        if (a.spec.keepStdinOpen && a.listeners.size === 0) a.running?.endInput();
      },
    };
  }

  /**
   * Stops a queued or running job: it ends as `killed` with the note `cancelled` (a running
   * one once its whole process tree is gone). Answers the job as it ended; a job that had
   * already ended is a 409.
   */
  async cancel(user: User, id: string): Promise<JobView> {
    const a = this.active.get(id);
    if (!a) {
      const done = await this.get(user, id);
      throw errors.invalidState(`job "${id}" already ended (${done.status ?? 'done'}); nothing to cancel`, { details: { status: done.status } });
    }
    if (!mayAccess(user, a.userId)) throw errors.jobNotFound(id);
    if (this.scheduler.cancel(a)) void this.execute(a, CANCELLED_NOTE);
    else if (!a.killed) {
      a.killed = true;
      a.killNote = CANCELLED_NOTE;
      a.running?.kill();
    }
    return a.done;
  }

  /** Kills every job, then stops the runner. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    for (const job of this.scheduler.drain()) void this.execute(job, 'server-shutdown: the server shut down before the job started');
    const pending = [...this.active.values()];
    for (const a of pending) {
      a.killed = true;
      a.killNote = SHUTDOWN_NOTE;
      a.running?.kill();
    }
    await Promise.all(pending.map((a) => a.done));
    await this.runner.close();
  }

  /** Removes results whose retention ended. */
  async sweep(): Promise<number> {
    try {
      return await this.store.jobs.deleteExpired(Date.now());
    } catch (e) {
      this.log.error({ err: e }, 'removing expired jobs failed');
      return 0;
    }
  }

  /** Turns a request into a runner spec, refusing what the runtime or the admin do not allow. */
  private specFor(user: User, req: JobRequest): JobSpec {
    const c = this.config;
    const runtime = this.runtimes.get(req.runtime);
    const files = validateFiles(req.files ?? {}, { maxFiles: c.maxFiles, maxTotalBytes: c.maxTotalFileBytes });
    const outputPath = req.output === undefined ? undefined : checkPath(req.output);
    const timeoutSeconds = req.timeoutSeconds ?? Math.min(c.timeoutSeconds, c.maxTimeoutSeconds);
    atMost('timeoutSeconds', timeoutSeconds, c.maxTimeoutSeconds);
    const limits = {
      memoryBytes: atMost('limits.memoryBytes', req.limits?.memoryBytes ?? c.memoryBytes, c.maxMemoryBytes),
      pids: atMost('limits.pids', req.limits?.pids ?? c.pids, c.maxPids),
      outputBytes: atMost('limits.outputBytes', req.limits?.outputBytes ?? c.outputBytes, c.maxOutputBytes),
      cpus: c.cpus,
      fileSizeBytes: c.fileSizeBytes,
      openFiles: c.openFiles,
    };
    if (req.network && !(c.allowNetwork && runtime.network)) {
      throw errors.forbidden(
        c.allowNetwork
          ? `runtime "${runtime.name}" does not allow network access`
          : 'network access for jobs is turned off on this server (jobs.allowNetwork)',
      );
    }
    const stdin = req.stdin === undefined ? undefined : Buffer.from(req.stdin);
    if (stdin) atMost('stdin (bytes)', stdin.length, c.stdinBytes);
    const args = (req.args ?? []).map(shellQuote).join(' ');
    if (req.cases) {
      checkCases(req.cases, c);
      if (req.stdin !== undefined) throw errors.validation('stdin: a batch takes each case’s stdin (cases[].stdin), not stdin', { details: { field: 'stdin' } });
      if (req.interactive) throw errors.validation('interactive: a batch cannot be interactive', { details: { field: 'interactive' } });
      // Outputs of every case are kept: together at most jobs.maxOutputBytes per stream.
      limits.outputBytes = Math.min(limits.outputBytes, Math.max(1024, Math.floor(c.maxOutputBytes / req.cases.length)));
    }
    if ((req.cases || runtime.compileCommand) && runtime.driver !== 'process') {
      const field = req.cases ? 'cases' : 'runtime';
      throw errors.validation(`${field}: batches and compile steps run on the process driver only (runtime "${runtime.name}" runs on ${runtime.driver})`, {
        details: { field },
      });
    }
    return {
      id: randomUUID(),
      owner: user.name,
      runtime: runtime.name,
      ...(runtime.compileCommand && { compile: { command: runtime.compileCommand, timeoutMs: Math.round(c.compileTimeoutSeconds * 1000) } }),
      ...(req.cases && { cases: req.cases.map((k) => ({ stdin: k.stdin === undefined ? undefined : Buffer.from(k.stdin) })) }),
      command: args ? `${req.entry ?? runtime.command} ${args}` : (req.entry ?? runtime.command),
      files,
      stdin,
      keepStdinOpen: req.interactive ?? false,
      timeoutMs: Math.round(timeoutSeconds * 1000),
      limits,
      network: req.network ?? false,
      readOnlyPaths: runtime.readOnlyPaths,
      image: runtime.image ?? undefined,
      driver: runtime.driver,
      outputPath,
      maxOutputFileBytes: c.maxOutputFileBytes,
    };
  }

  private queuedRow(user: User, req: JobRequest, spec: JobSpec): JobsTable {
    return queuedJobRow({
      id: spec.id,
      user_id: user.id,
      runtime: req.runtime,
      spec: JSON.stringify({
        command: spec.command,
        timeoutMs: spec.timeoutMs,
        limits: spec.limits,
        network: spec.network,
        output: spec.outputPath ?? null,
        interactive: spec.keepStdinOpen,
        compile: spec.compile?.command ?? null,
        cases: spec.cases?.length ?? null,
      }),
      created_at: Date.now(),
    });
  }

  /** Runs a job the scheduler started (or, with `notStarted`, ends one that never ran). */
  private async execute(job: ActiveJob, notStarted?: string): Promise<void> {
    let result: JobResult;
    if (notStarted) result = emptyResult(notStarted);
    else {
      job.state = 'running';
      const startedAt = (job.startedAt = Date.now());
      // Written beside the start, not before it (a job's start is a measured fast path); a
      // server that dies meanwhile marks it ended at its next start either way. A job started
      // from submit() itself is inserted as running: the first await lets submit() decide
      // that and issue the insert before this looks at the row.
      job.marked = (async () => {
        await null;
        await job.inserted;
        if (job.row.state !== 'running') await this.store.jobs.markRunning(job.id, startedAt);
      })();
      job.marked.catch((e: unknown) => this.log.error({ err: e, job: job.id }, 'recording a running job failed'));
      try {
        const running = await this.runner.run(job.spec, (stream, chunk) => {
          for (const l of job.listeners) l.output(stream, chunk);
        });
        job.running = running;
        for (const data of job.pendingInput.splice(0)) running.write(data);
        if (job.killed) running.kill();
        result = await running.done;
      } catch (e) {
        this.log.error({ err: e, job: job.id }, 'the job runner failed');
        result = emptyResult(`the job could not start: ${(e as Error).message}`);
      }
      this.scheduler.release(job, result.wallMs);
      if (result.status === 'timeout' && job.ticket?.cutByCredits) result.note ??= 'stopped when its reserved credits ran out';
      if (result.status === 'killed' && job.killNote) result.note ??= job.killNote;
    }
    job.ticket?.finished({ started: !notStarted && result.wallMs > 0, wallMs: result.wallMs, status: result.status });
    const finishedAt = Date.now();
    const finish: JobFinish = {
      status: result.status,
      exit_code: result.exitCode,
      signal: result.signal,
      stdout: result.stdout,
      stderr: result.stderr,
      stdout_truncated: result.stdoutTruncated ? 1 : 0,
      stderr_truncated: result.stderrTruncated ? 1 : 0,
      wall_ms: result.wallMs,
      cpu_ms: result.cpuMs,
      memory_peak_bytes: result.memoryPeakBytes,
      output_name: result.outputFile?.name ?? null,
      output_mime: result.outputFile?.mimeType ?? null,
      output_data: result.outputFile?.data ?? null,
      note: result.note,
      steps: stepsOf(result, job),
      started_at: job.startedAt,
      finished_at: finishedAt,
      expires_at: finishedAt + this.config.retentionSeconds * 1000,
    };
    try {
      await job.inserted;
      await job.marked.catch(() => undefined);
      await this.store.jobs.finish(job.id, finish);
    } catch (e) {
      this.log.error({ err: e, job: job.id }, 'recording a job result failed');
    }
    const view = viewOf({ ...job.row, ...finish, state: 'done', user_name: job.userName });
    this.active.delete(job.id);
    for (const l of job.listeners) l.exit(view);
    job.resolve(view);
  }

  private input(job: ActiveJob, data: Buffer): void {
    if (job.running) job.running.write(data);
    else if (job.pendingInput.reduce((n, b) => n + b.length, data.length) <= this.config.stdinBytes) job.pendingInput.push(data);
  }

  private activeView(a: ActiveJob): JobView {
    const view = viewOf({ ...a.row, user_name: a.userName });
    view.state = a.state;
    view.startedAt = iso(a.startedAt);
    if (a.running) {
      view.stdout = a.running.output('stdout').toString('utf8');
      view.stderr = a.running.output('stderr').toString('utf8');
    }
    return view;
  }
}

/** The note of a job its owner (or an admin) cancelled. */
export const CANCELLED_NOTE = 'cancelled';

/** The note of a job killed because the server shut down (SIGTERM, Ctrl-C). */
export const SHUTDOWN_NOTE = 'server-shutdown: the server shut down while the job ran';

/** The `steps` column of a result: its compile step and its cases, compared with what was expected. */
function stepsOf(result: JobResult, job: ActiveJob): string | null {
  if (!result.compile && !result.cases) return null;
  const steps: StoredSteps = {};
  if (result.compile) steps.compile = stepView(result.compile);
  if (result.cases) steps.cases = result.cases.map((r, i) => caseView(r, job.expected[i], job.compare));
  return JSON.stringify(steps);
}

function mayAccess(user: User, ownerId: string): boolean {
  return user.role === 'admin' || user.id === ownerId;
}

function atMost(field: string, value: number, max: number): number {
  if (value > max) throw errors.validation(`${field}: at most ${max} on this server (got ${value})`);
  return value;
}

/** Quotes one argument for /bin/sh. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

function emptyResult(note: string): JobResult {
  return { ...notRun('killed'), outputFile: null, note };
}
