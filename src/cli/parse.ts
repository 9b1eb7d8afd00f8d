/** Parsers for option values (commander's argParser); a bad value is a `bad_input` error. */
import { CliError } from './output.js';

/** A whole number ≥ 0: `--credits 10`, `--days 30`. */
export function parseCount(v: string, flag: string): number {
  if (!/^\d+$/.test(v)) throw new CliError('bad_input', `${flag} must be a whole number, got "${v}"`);
  return Number(v);
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 7 * 86400 };

/** A duration in seconds: "3600", "90m", "12h", "30d", "1w". */
export function parseDuration(v: string, flag = '--ttl'): number {
  const m = /^(\d+)\s*([smhdw]?)$/.exec(v.trim());
  if (!m) throw new CliError('bad_input', `${flag} must be a number of seconds or like 90m, 12h, 30d, 1w; got "${v}"`);
  return Number(m[1]) * UNIT_SECONDS[m[2] || 's']!;
}
