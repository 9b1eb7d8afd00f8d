/**
 * The seam between the job service and whatever executes a job: the process driver's
 * sandboxed runner now, a docker runner later. A runner runs one job to completion and
 * reports what happened; queueing, per-user caps and storage stay in the service.
 */
import type { Limits, OutputStream } from '../../drivers/driver.js';
import type { JobFile } from './files.js';

export const JOB_STATUSES = ['ok', 'error', 'timeout', 'memory', 'output-limit', 'killed', 'compile-error'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export interface JobLimits extends Required<Pick<Limits, 'memoryBytes' | 'pids' | 'cpus'>> {
  /** Cap on stdout and on stderr, each; past it the job is stopped (`output-limit`). */
  outputBytes: number;
  /** RLIMIT_FSIZE: the largest file the job may write. */
  fileSizeBytes: number;
  /** RLIMIT_NOFILE. */
  openFiles: number;
}

/** A step that runs before the job's command (a compiler): once, in the same sandbox and dir. */
export interface CompileSpec {
  command: string;
  timeoutMs: number;
}

/** One case of a batch: the job's command run again with this stdin. */
export interface CaseSpec {
  stdin?: Buffer;
}

export interface JobSpec {
  id: string;
  owner: string;
  /** The runtime's name: sandboxes are reused only for one owner and one runtime. */
  runtime?: string;
  /** A shell command line run by /bin/sh in the job's directory (entry plus quoted args). */
  command: string;
  files: JobFile[];
  /** Written to stdin at start; stdin is closed afterwards unless `keepStdinOpen`. */
  stdin?: Buffer;
  keepStdinOpen: boolean;
  timeoutMs: number;
  limits: JobLimits;
  network: boolean;
  /** Extra host paths the runtime needs, read-only at the same place. */
  readOnlyPaths: string[];
  /** Container image (container runners). */
  image?: string;
  /** The runner that runs it (the runtime's driver); undefined = the default one. */
  driver?: string;
  /** Relative path of a file to return after the run. */
  outputPath?: string;
  maxOutputFileBytes: number;
  /** Compile first; a compiler that fails ends the job as `compile-error`. */
  compile?: CompileSpec;
  /** A batch: `command` runs once per case (each under `timeoutMs` and the limits), `stdin` unused. */
  cases?: CaseSpec[];
  /** Cap on the whole job's wall time across its steps (credits), when less than their sum. */
  totalTimeoutMs?: number;
}

export interface OutputFile {
  name: string;
  mimeType: string;
  data: Buffer;
}

/** What one step (the compile, the run, one case) did. */
export interface StepResult {
  status: JobStatus;
  exitCode: number | null;
  signal: string | null;
  stdout: Buffer;
  stderr: Buffer;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  wallMs: number;
  cpuMs: number | null;
  memoryPeakBytes: number | null;
}

/** A step that never ran (the job was killed or cancelled first, its sandbox died, or its time ran out). */
export const notRun = (status: JobStatus): StepResult => ({
  status,
  exitCode: null,
  signal: null,
  stdout: Buffer.alloc(0),
  stderr: Buffer.alloc(0),
  stdoutTruncated: false,
  stderrTruncated: false,
  wallMs: 0,
  cpuMs: null,
  memoryPeakBytes: null,
});

/**
 * The job's result. Its own fields are the run's; with a compile step `compile` holds the
 * compiler's, and a batch has `cases` (its own fields then sum them up: no output, total
 * times, the highest memory peak).
 */
export interface JobResult extends StepResult {
  compile?: StepResult;
  cases?: StepResult[];
  outputFile: OutputFile | null;
  /** Why the output file is missing, or another note for the user. */
  note: string | null;
}

export interface RunningJob {
  /** Writes to the job's stdin (ignored once closed). */
  write(data: Buffer | string): void;
  /** Closes the job's stdin. */
  endInput(): void;
  /** Kills the whole job; its status becomes `killed` (unless it already ended). */
  kill(): void;
  /** What the job printed so far on `stream` (at most the cap). */
  output(stream: OutputStream): Buffer;
  /** Resolves once the job ended and its directory is gone. Never rejects. */
  readonly done: Promise<JobResult>;
}

export interface JobRunner {
  readonly name: string;
  /**
   * Throws (503 driver_unavailable) when this runner cannot run the job at all, e.g. no
   * sandbox on this machine: asked before the job is queued, so the client gets the error.
   */
  admit?(spec: JobSpec): void;
  /** Starts a job; `onOutput` gets every chunk kept (never beyond the cap), in order. */
  run(spec: JobSpec, onOutput: (stream: OutputStream, chunk: Buffer) => void): Promise<RunningJob>;
  /** Kills every job and drops pre-started sandboxes. */
  close(): Promise<void>;
}
