/**
 * Server logs for a person at a terminal: pino's JSON records turned into one line each,
 *
 *   09:14:25.123 INFO  corral is listening  url=http://127.0.0.1:8080 data=/srv/corral-data
 *
 * with the level coloured (unless NO_COLOR is set), nested fields flattened one level
 * (`req.method=GET`), and an error's stack under an ERROR or FATAL line, indented. Redaction
 * has happened before a record gets here (logger.ts).
 */

const LEVELS: Record<number, [string, string]> = {
  10: ['TRACE', '\x1b[90m'],
  20: ['DEBUG', '\x1b[36m'],
  30: ['INFO ', '\x1b[32m'],
  40: ['WARN ', '\x1b[33m'],
  50: ['ERROR', '\x1b[31m'],
  60: ['FATAL', '\x1b[41m\x1b[97m'],
};
const RESET = '\x1b[0m';
/** pino's own fields, shown in the line's head or not at all. */
const OMIT = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'v']);

const scalar = (v: unknown): string => {
  if (typeof v === 'string') return /^[^\s="]+$/.test(v) ? v : JSON.stringify(v);
  if (v === null || typeof v !== 'object') return String(v);
  return JSON.stringify(v);
};

interface ErrFields {
  type?: string;
  message?: string;
  stack?: string;
}

function fields(record: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(record)) {
    if (OMIT.has(k) || v === undefined) continue;
    if ((k === 'err' || k === 'error') && v && typeof v === 'object') {
      const e = v as ErrFields;
      out.push(`${k}=${scalar(`${e.type ?? 'Error'}: ${e.message ?? ''}`)}`);
    } else if (v && typeof v === 'object' && !Array.isArray(v)) {
      for (const [k2, v2] of Object.entries(v)) if (v2 !== undefined) out.push(`${k}.${k2}=${scalar(v2)}`);
    } else out.push(`${k}=${scalar(v)}`);
  }
  return out;
}

/** One JSON record (a line pino wrote) as a line for people; text that is not a record stays as it is. */
export function prettyLine(json: string, color: boolean): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  const time = typeof record.time === 'number' ? new Date(record.time).toTimeString().slice(0, 8) + `.${String(record.time % 1000).padStart(3, '0')}` : '';
  const [name, paint] = LEVELS[record.level as number] ?? [String(record.level), ''];
  const level = color && paint ? `${paint}${name}${RESET}` : name;
  const rest = fields(record);
  let line = `${time} ${level} ${String(record.msg ?? '')}${rest.length ? `  ${rest.join(' ')}` : ''}\n`;
  const stack = (record.err as ErrFields | undefined)?.stack;
  if (stack && (record.level as number) >= 50) line += `${stack.split('\n').slice(1).map((l) => `    ${l.trim()}`).join('\n')}\n`;
  return line;
}

/** A pino destination that writes pretty lines to `out` (stdout on a terminal). */
export function prettyDestination(out: NodeJS.WriteStream = process.stdout): { write(chunk: string): void } {
  const color = !process.env.NO_COLOR && out.isTTY === true;
  return { write: (chunk: string) => void out.write(prettyLine(chunk.trimEnd(), color)) };
}
