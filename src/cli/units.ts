/**
 * Sizes and durations as people type them on the command line, for every command that takes
 * one (`-m 100M`, `--timeout 2s`, `--ttl 30d`), and back into text for messages.
 *
 * Sizes are binary: K, M, G and T mean KiB, MiB, GiB and TiB (as in docker's `-m`), with an
 * optional `i` and `B` (`100M`, `100MiB`, `100MB` are all 100 × 1024² bytes); a bare number
 * is bytes. Durations take ms, s, m, h, d or w (`500ms`, `2s`, `5m`, `30d`); a bare number
 * is seconds. Errors name the flag as the user typed it: `-m: "100X" is not a size …`.
 */
import { CliError } from './output.js';

const SIZE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
const DURATION_UNITS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 7 * 86400 };

/** What the help text of a size option says about units. */
export const SIZE_HELP = 'e.g. 512M, 2G (K/M/G = KiB/MiB/GiB; a bare number is bytes)';
/** What the help text of a duration option says about units. */
export const DURATION_HELP = 'e.g. 500ms, 30s, 5m, 12h, 30d (a bare number is seconds)';

/** `100M` → 104857600. */
export function parseSize(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(?:([kmgt])(i?b)?|b)?$/i.exec(text.trim());
  if (!m) throw new CliError('bad_input', `${flag}: "${text}" is not a size; ${SIZE_HELP}`);
  const bytes = Number(m[1]) * SIZE_UNITS[(m[2] ?? '').toLowerCase()]!;
  if (!Number.isSafeInteger(Math.round(bytes))) throw new CliError('bad_input', `${flag}: "${text}" is too large`);
  return Math.round(bytes);
}

/** `2s` → 2, `500ms` → 0.5, `30d` → 2592000 (seconds). */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|[smhdw])?$/i.exec(text.trim());
  if (!m) throw new CliError('bad_input', `${flag}: "${text}" is not a duration; ${DURATION_HELP}`);
  const seconds = Number(m[1]) * DURATION_UNITS[(m[2] ?? 's').toLowerCase()]!;
  if (!Number.isFinite(seconds)) throw new CliError('bad_input', `${flag}: "${text}" is too long`);
  return seconds;
}

/** A duration the API takes in whole seconds (`--ttl`, `--stop-grace`): `1500ms` is refused. */
export function parseWholeSeconds(text: string, flag: string): number {
  const seconds = parseDuration(text, flag);
  if (!Number.isInteger(seconds)) throw new CliError('bad_input', `${flag}: whole seconds only, got "${text}"`);
  return seconds;
}

/** 4194304 → "4M", 1610612736 → "1.5G", 1000 → "1000": the shortest exact-enough spelling. */
export function formatSize(bytes: number): string {
  for (const unit of ['T', 'G', 'M', 'K'] as const) {
    const n = bytes / SIZE_UNITS[unit.toLowerCase()]!;
    const hundredths = Math.round(n * 100);
    if (n >= 1 && Math.abs(n * 100 - hundredths) < 1e-6) return `${hundredths / 100}${unit}`;
  }
  return String(bytes);
}

/** 2592000 → "30d", 90 → "90s", 0.5 → "500ms": the largest unit that divides it. */
export function formatDuration(seconds: number): string {
  if (seconds > 0 && seconds < 1) return `${Math.round(seconds * 1000)}ms`;
  for (const [unit, size] of [['w', 604800], ['d', 86400], ['h', 3600], ['m', 60]] as const) {
    if (seconds >= size && seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return `${seconds}s`;
}
