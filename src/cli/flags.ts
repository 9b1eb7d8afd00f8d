/**
 * Options with units, and errors told in the terms of the flag the user typed.
 *
 *   cmd.addOption(unitOption('-m, --memory <size>', 'memory limit', 'size', 'limits.memoryBytes'))
 *
 * parses `-m 100M` to bytes (a bad value: `-m: "100X" is not a size; …`), and names the API
 * body field the value fills, so that when the server refuses it (`body.limits.memoryBytes:
 * must be >= 4194304`) apiAction reports `-m: at least 4M` instead (see `inFlagTerms`).
 */
import { Option, type Command } from 'commander';
import { CliError } from './output.js';
import { parseCount } from './parse.js';
import { DURATION_HELP, SIZE_HELP, formatDuration, formatSize, parseDuration, parseSize, parseWholeSeconds } from './units.js';

/** size: bytes; duration: seconds, fractions allowed; seconds: whole seconds; count: whole number; number: any number. */
export type Unit = 'size' | 'duration' | 'seconds' | 'count' | 'number';

const parseNumber = (v: string, flag: string) => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new CliError('bad_input', `${flag}: "${v}" is not a number`);
  return n;
};

const PARSE: Record<Unit, (text: string, flag: string) => number> = {
  size: parseSize,
  duration: parseDuration,
  seconds: parseWholeSeconds,
  count: parseCount,
  number: parseNumber,
};
const FORMAT: Record<Unit, (n: number) => string> = {
  size: formatSize,
  duration: formatDuration,
  seconds: formatDuration,
  count: String,
  number: String,
};
const HELP: Partial<Record<Unit, string>> = { size: SIZE_HELP, duration: DURATION_HELP, seconds: DURATION_HELP };

/** The API body fields each unit option fills. */
const fieldsOf = new WeakMap<Option, { unit: Unit; fields: string[] }>();

/** An option's spelling on this command line (`-m` or `--memory`); its long form if absent. */
export function typedFlag(opt: Option, argv: string[] = process.argv): string {
  for (let i = argv.length - 1; i >= 2; i--) {
    const arg = argv[i]!;
    if (opt.long && (arg === opt.long || arg.startsWith(`${opt.long}=`))) return opt.long;
    if (opt.short && arg.startsWith(opt.short) && !arg.startsWith('--')) return opt.short;
  }
  return opt.long ?? opt.short ?? opt.name();
}

/**
 * An option whose value has a unit; `fields` are the API body paths it fills (`limits.memoryBytes`),
 * so that the server's refusal of the value names this flag.
 */
export function unitOption(flags: string, description: string, unit: Unit, ...fields: string[]): Option {
  const help = HELP[unit];
  const opt = new Option(flags, help ? `${description}, ${help}` : description);
  opt.argParser((v: string) => PARSE[unit](v, typedFlag(opt)));
  fieldsOf.set(opt, { unit, fields });
  return opt;
}

/**
 * The server's `validation_failed` for a body field a flag of `cmd` filled, told in the flag's
 * terms: `body.limits.memoryBytes: must be >= 4194304` → `-m: at least 4M`. Other errors as they are.
 */
export function inFlagTerms(e: unknown, cmd: Command): unknown {
  if (!(e instanceof CliError) || e.code !== 'validation_failed') return e;
  // Fastify's schema errors name `body.…`; multipart JSON fields name the field (`options.…`).
  const m = /^(?:body|options|spec)\.([\w.]+): (.*)$/.exec(e.message);
  if (!m) return e;
  for (const opt of cmd.options) {
    const meta = fieldsOf.get(opt);
    if (meta?.fields.includes(m[1]!)) return new CliError('bad_input', `${typedFlag(opt)}: ${reword(m[2]!, meta.unit)}`);
  }
  return e;
}

const BOUND_WORDS: Record<string, string> = {
  '>=': 'at least',
  '<=': 'at most',
  '>': 'more than',
  '<': 'less than',
  'greater or equal to': 'at least',
  'less or equal to': 'at most',
  'greater than': 'more than',
  'less than': 'less than',
};

/** ajv's `must be >= 4194304` and TypeBox's `Expected integer to be greater or equal to 4194304`, in the flag's unit. */
function reword(message: string, unit: Unit): string {
  const bound =
    /^must be (>=|<=|>|<) (-?\d+(?:\.\d+)?)$/.exec(message) ??
    /^Expected \w+ to be (greater or equal to|less or equal to|greater than|less than) (-?\d+(?:\.\d+)?)$/.exec(message);
  if (bound) return `${BOUND_WORDS[bound[1]!]} ${FORMAT[unit](Number(bound[2]))}`;
  if (message === 'must be integer' || message === 'Expected integer') return unit === 'size' ? 'a whole number of bytes' : unit === 'count' ? 'a whole number' : 'whole seconds';
  return message;
}
