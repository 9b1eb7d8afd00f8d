/**
 * What every job runner does with a job's output and end: keep each stream up to its cap,
 * read the output file safely, and turn it all into a JobResult with one status rule.
 */
import { constants as fsConstants } from 'node:fs';
import { open, realpath } from 'node:fs/promises';
import path from 'node:path';
import { mimeType } from '../core/jobs/mime.js';
import type { JobResult, JobSpec, JobStatus, OutputFile, StepResult } from '../core/jobs/runner.js';

/** Keeps up to `cap` bytes of a stream; reports whether more came. */
export class CappedOutput {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  truncated = false;
  constructor(private readonly cap: number) {}

  /** The part of `chunk` that fits, or undefined when nothing does. */
  take(chunk: Buffer): Buffer | undefined {
    const room = this.cap - this.kept;
    if (chunk.length > room) this.truncated = true;
    if (room <= 0) return undefined;
    const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.chunks.push(part);
    this.kept += part.length;
    return part;
  }

  get buffer(): Buffer {
    if (this.chunks.length > 1) this.chunks.splice(0, this.chunks.length, Buffer.concat(this.chunks));
    return this.chunks[0] ?? Buffer.alloc(0);
  }
}

export type JobOutput = Record<'stdout' | 'stderr', CappedOutput>;

export const jobOutput = (spec: JobSpec): JobOutput => ({
  stdout: new CappedOutput(spec.limits.outputBytes),
  stderr: new CappedOutput(spec.limits.outputBytes),
});

/** How a job ended, as its runner saw it. */
export interface JobEnd {
  /** Why corral ended it (timeout, output limit, kill), if it did. */
  reason: JobStatus | undefined;
  oomKilled: boolean;
  code: number | null;
  signal: string | null;
  wallMs: number;
  cpuMs: number | null;
  memoryPeakBytes: number | null;
}

/** What one step (or a whole single-step job) did: the one status rule. */
export function stepResult(out: JobOutput, end: JobEnd): StepResult {
  const { reason, oomKilled, code } = end;
  const status: JobStatus = reason ?? (oomKilled ? 'memory' : code === 0 ? 'ok' : code === null ? 'killed' : 'error');
  return {
    status,
    exitCode: code,
    signal: end.signal,
    stdout: out.stdout.buffer,
    stderr: out.stderr.buffer,
    stdoutTruncated: out.stdout.truncated,
    stderrTruncated: out.stderr.truncated,
    wallMs: Math.round(end.wallMs * 1000) / 1000,
    cpuMs: end.cpuMs,
    memoryPeakBytes: end.memoryPeakBytes,
  };
}

/** The output file of `spec` (or why there is none); call it once every process of the job is dead. */
export async function outputFileOf(spec: JobSpec, workDir: string): Promise<{ outputFile: OutputFile | null; note: string | null }> {
  if (!spec.outputPath) return { outputFile: null, note: null };
  const r = await readOutputFile(workDir, spec.outputPath, spec.maxOutputFileBytes);
  return 'note' in r ? { outputFile: null, note: r.note } : { outputFile: r, note: null };
}

/** The result; call it once every process of the job is dead, before its dir is removed. */
export async function jobResult(spec: JobSpec, workDir: string, out: JobOutput, end: JobEnd): Promise<JobResult> {
  return { ...stepResult(out, end), ...(await outputFileOf(spec, workDir)) };
}

/**
 * Reads the job's output file once every process of the job is dead (so nothing can swap
 * it meanwhile): it must be a regular file reached without any symlink, within the size cap.
 */
export async function readOutputFile(workDir: string, rel: string, max: number): Promise<OutputFile | { note: string }> {
  const full = path.join(workDir, rel);
  const missing = { note: `the output file "${rel}" was not found` };
  const real = await realpath(full).catch(() => undefined);
  if (!real) return missing;
  if (real !== full) return { note: `the output file "${rel}" is a symbolic link or lies behind one; not returned` };
  const fh = await open(full, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK).catch(() => undefined);
  if (!fh) return missing;
  try {
    const st = await fh.stat();
    if (!st.isFile()) return { note: `the output "${rel}" is not a regular file` };
    if (st.size > max) return { note: `the output file "${rel}" is larger than ${max} bytes; not returned` };
    return { name: path.basename(rel), mimeType: mimeType(rel), data: await fh.readFile() };
  } finally {
    await fh.close();
  }
}
