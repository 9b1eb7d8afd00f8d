/** Parsers for plain option values (commander's argParser); a bad value is a `bad_input` error naming the flag. Sizes and durations: units.ts. */
import { CliError } from './output.js';

/** A whole number ≥ 0: `--credits 10`, `--days 30`. */
export function parseCount(v: string, flag: string): number {
  if (!/^\d+$/.test(v.trim())) throw new CliError('bad_input', `${flag}: must be a whole number, got "${v}"`);
  return Number(v);
}
