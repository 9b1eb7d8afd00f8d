/**
 * The Procfile format smartmob-agent used (smartmob RFC 1), with comments:
 *
 *     # a comment
 *     web: env PORT_NAME=http MODE="two words" python -m app \
 *            --verbose
 *     worker: ./bin/worker
 *
 * - one `type: command` per line; the type is letters, digits, `_` and `-` (1–63);
 * - an optional `env K=V …` prefix sets variables for that process only (values may be
 *   quoted with "…" or '…' to hold spaces; quotes are removed, nothing else is unescaped);
 * - a line ending in `\` continues on the next (the backslash and newline are removed, as
 *   in a shell); blank lines and lines starting with `#` are skipped;
 * - a duplicate type or a duplicate variable on one line is an error naming the line.
 *
 * The command is a shell command line, run with `sh -c` in the unpacked source.
 */
import { errors } from '../errors.js';

export interface ProcfileEntry {
  type: string;
  /** Variables from the `env K=V …` prefix. */
  env: Record<string, string>;
  /** The shell command, without the env prefix. */
  command: string;
  /** 1-based line the entry starts on. */
  line: number;
}

export type Procfile = ProcfileEntry[];

const TYPE = /^[A-Za-z0-9_-]{1,63}$/;
const VALUE = String.raw`(?:"[^"]*"|'[^']*'|[^\s"'])*`;
const ASSIGNMENT = new RegExp(String.raw`^([A-Za-z_][A-Za-z0-9_]*)=(${VALUE})`);
const ENV_PREFIX = new RegExp(String.raw`^env((?:\s+[A-Za-z_][A-Za-z0-9_]*=${VALUE})+)(?:\s+([\s\S]*))?$`);

export function parseProcfile(text: string): Procfile {
  const entries: Procfile = [];
  const firstLine = new Map<string, number>();
  for (const { line, content } of logicalLines(text)) {
    // A command or variable with a NUL byte could never be passed to a process.
    if (content.includes('\0')) throw invalid(line, 'contains a NUL byte');
    const trimmed = content.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const colon = trimmed.indexOf(':');
    if (colon < 0) throw invalid(line, 'expected "type: command"');
    const type = trimmed.slice(0, colon).trim();
    if (!TYPE.test(type)) {
      throw invalid(line, `invalid process type "${type}": use letters, digits, "_" and "-", up to 63 characters`);
    }
    const previous = firstLine.get(type);
    if (previous !== undefined) throw invalid(line, `duplicate process type "${type}" (first on line ${previous})`);
    firstLine.set(type, line);
    const { env, command } = splitEnv(trimmed.slice(colon + 1).trim(), line);
    if (command === '') throw invalid(line, `no command for process type "${type}"`);
    entries.push({ type, env, command, line });
  }
  return entries;
}

/** The entry for a process type; `unknown_process_type` (listing the known ones) if absent. */
export function commandFor(procfile: Procfile, type: string): ProcfileEntry {
  const entry = procfile.find((e) => e.type === type);
  if (!entry) throw errors.unknownProcessType(type, procfile.map((e) => e.type));
  return entry;
}

/**
 * A process's environment, later sources winning: corral's base env, then the request's
 * `env`, then the Procfile line's inline `env K=V` (as smartmob-agent documents).
 */
export function processEnv(
  base: Record<string, string>,
  requestEnv: Record<string, string> | undefined,
  entry: ProcfileEntry,
): Record<string, string> {
  return { ...base, ...requestEnv, ...entry.env };
}

/** Joins `\`-continued lines; each logical line keeps the number of its first line. */
function* logicalLines(text: string): Generator<{ line: number; content: string }> {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  let start = 0;
  let pending: string | undefined;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    if (pending === undefined) start = i + 1;
    const joined = (pending ?? '') + raw;
    const end = joined.trimEnd();
    if (end.endsWith('\\')) {
      pending = end.slice(0, -1);
      continue;
    }
    pending = undefined;
    yield { line: start, content: joined };
  }
  if (pending !== undefined) yield { line: start, content: pending };
}

function splitEnv(rest: string, line: number): { env: Record<string, string>; command: string } {
  const match = ENV_PREFIX.exec(rest);
  // `env` alone, or `env A=1` with nothing after it, is a plain command.
  if (!match || !match[2]) return { env: {}, command: rest };
  const env: Record<string, string> = {};
  let assignments = match[1]!.trim();
  while (assignments) {
    const [whole, key, value] = ASSIGNMENT.exec(assignments)!;
    if (key! in env) throw invalid(line, `duplicate variable "${key}"`);
    env[key!] = value!.replace(/"([^"]*)"|'([^']*)'/g, (_, dq: string | undefined, sq: string | undefined) => dq ?? sq ?? '');
    assignments = assignments.slice(whole.length).trim();
  }
  return { env, command: match[2].trim() };
}

const invalid = (line: number, reason: string) =>
  errors.procfileInvalid(`Procfile line ${line}: ${reason}`, { details: { line } });
