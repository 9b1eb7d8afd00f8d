/** Small helpers every benchmark shares: timing, percentiles and markdown tables. */
import { performance } from 'node:perf_hooks';

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
