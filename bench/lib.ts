/** Small helpers every benchmark shares: timing, percentiles and markdown tables. */
import { execFile } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';

export interface Sample {
  name: string;
  ms: number[];
}

export function percentile(values: number[], p: number): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx]!;
}

/** Runs `fn` `n` times (after `warmup` untimed runs) and returns each run's milliseconds. */
export async function time(n: number, fn: () => Promise<unknown>, warmup = 3): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
  }
  return out;
}

/**
 * Milliseconds of one GET as curl times it (request to last byte, its own clock): a client in
 * a process of its own and lighter than Node's fetch, which spent 20–80 ms of a loaded
 * machine taking in a 2.3 MB body — more than the server that sent it.
 */
export async function curlMs(url: string, headers: Record<string, string> = {}): Promise<number> {
  const h = Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]);
  const { stdout } = await promisify(execFile)('curl', ['-sf', '-o', '/dev/null', '-w', '%{time_total}', ...h, url]);
  return Number(stdout) * 1000;
}

export const fmt = (n: number, digits = 1): string => (Number.isFinite(n) ? n.toFixed(digits) : '–');

/** A markdown table: header row, then rows of cells. */
export function table(header: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** A benchmark module's result: a titled section of markdown (tables and a sentence or two). */
export interface BenchSection {
  title: string;
  markdown: string;
}

export type Benchmark = () => Promise<BenchSection[]>;
