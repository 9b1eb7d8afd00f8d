/** How the CLI reports: `--json` for machines, text for people, `CODE: message` on errors. */
import { isCorralError } from '../core/errors.js';

export class CliError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export const runAction = {
  /** Prints an error as `CODE: message` on stderr and exits 1. */
  fail(e: unknown): never {
    if (e instanceof CliError || isCorralError(e)) process.stderr.write(`${e.code}: ${e.message}\n`);
    else process.stderr.write(`error: ${(e as Error)?.message ?? String(e)}\n`);
    process.exit(1);
  },
  /** Wraps a command's action so any error is reported the same way. */
  wrap<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
    return async (...args: A) => {
      try {
        await fn(...args);
      } catch (e) {
        runAction.fail(e);
      }
    };
  },
};

export function print(json: boolean, value: unknown, text: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${text()}\n`);
}

/** Text columns for people: a header row, then one row per item, padded to align. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** Labelled lines for people, values aligned: `  state:    running`. */
export function labelled(rows: [string, string][], indent = '  '): string {
  const width = Math.max(...rows.map(([k]) => k.length)) + 1;
  return rows.map(([k, v]) => `${indent}${`${k}:`.padEnd(width)}  ${v}`).join('\n');
}
