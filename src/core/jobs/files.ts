/**
 * A job's files: a map of relative path → content (utf-8 text, or base64 for binary).
 * Every path is checked before anything touches a disk, so the runner only ever writes
 * fresh files below the job's own directory. Each violation is a 400 naming the file.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { errors } from '../errors.js';

export const FileContentSchema = Type.Union([
  Type.String({ description: 'utf-8 text' }),
  Type.Object(
    {
      content: Type.String(),
      encoding: Type.Optional(Type.Union([Type.Literal('utf-8'), Type.Literal('base64')], { description: 'default utf-8' })),
    },
    { additionalProperties: false },
  ),
]);
export const FilesSchema = Type.Record(Type.String(), FileContentSchema, {
  description: 'relative path → content (a string is utf-8; {content, encoding: "base64"} for binary)',
});
export type FilesInput = Static<typeof FilesSchema>;

/** A checked file, ready to be written below a job's directory. */
export interface JobFile {
  path: string;
  data: Buffer;
}

export interface FileCaps {
  maxFiles: number;
  maxTotalBytes: number;
}

export const MAX_PATH_LENGTH = 512;
const MAX_SEGMENT_LENGTH = 255;
const MAX_DEPTH = 16;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const bad = (file: string, why: string) =>
  errors.badFile(`file ${JSON.stringify(file)}: ${why}`, { details: { file } });

/** Why `p` is not a safe relative path, or undefined when it is. */
export function unsafePathReason(p: string): string | undefined {
  if (p.length === 0) return 'the path is empty';
  if (p.length > MAX_PATH_LENGTH) return `the path is longer than ${MAX_PATH_LENGTH} characters`;
  if (p.includes('\0')) return 'the path contains a NUL byte';
  // Control characters hide in terminals and logs; a backslash means something else elsewhere.
  if (/[\x01-\x1f\x7f]/.test(p)) return 'the path contains a control character';
  if (p.includes('\\')) return 'the path contains a backslash; use "/"';
  if (p.startsWith('/')) return 'the path is absolute; use a relative path';
  const segments = p.split('/');
  if (segments.length > MAX_DEPTH) return `the path is nested deeper than ${MAX_DEPTH} directories`;
  for (const s of segments) {
    if (s === '') return 'the path has an empty segment ("//" or a trailing "/")';
    if (s === '.' || s === '..') return `the path contains "${s}"`;
    if (Buffer.byteLength(s) > MAX_SEGMENT_LENGTH) return `a path segment is longer than ${MAX_SEGMENT_LENGTH} bytes`;
  }
  return undefined;
}

/** Checks a safe relative path (the output path of a job, say) or throws a 400 naming it. */
export function checkPath(p: string): string {
  const why = unsafePathReason(p);
  if (why) throw bad(p, why);
  return p;
}

/** Decodes and checks every file: paths, count, total size, no file used as a directory. */
export function validateFiles(input: FilesInput, caps: FileCaps): JobFile[] {
  const names = Object.keys(input);
  if (names.length > caps.maxFiles) {
    throw errors.badFile(`too many files: ${names.length} (at most ${caps.maxFiles})`, { details: { file: names[caps.maxFiles] } });
  }
  const files: JobFile[] = [];
  let total = 0;
  for (const name of names) {
    checkPath(name);
    const value = input[name]!;
    const text = typeof value === 'string' ? value : value.content;
    const encoding = typeof value === 'string' ? 'utf-8' : value.encoding;
    if (encoding === 'base64' && !BASE64.test(text)) throw bad(name, 'the content is not valid base64');
    const data = Buffer.from(text, encoding === 'base64' ? 'base64' : 'utf8');
    total += data.length;
    if (total > caps.maxTotalBytes) throw bad(name, `the files add up to more than ${caps.maxTotalBytes} bytes`);
    files.push({ path: name, data });
  }
  // "a" as a file and "a/b" would have to write through a file.
  const fileSet = new Set(names);
  for (const name of names) {
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/');
      if (fileSet.has(parent)) throw bad(name, `its directory "${parent}" is also given as a file`);
    }
  }
  return files;
}

/** Below this total, files are written synchronously: faster than the thread pool for a few small files. */
const SYNC_WRITE_BYTES = 256 * 1024;

/**
 * Writes checked files below `dir`, which must be fresh and hold nothing the job wrote:
 * O_EXCL creation never follows a link, so nothing is written outside `dir`.
 */
export async function writeFiles(dir: string, files: JobFile[]): Promise<void> {
  const sync = files.reduce((n, f) => n + f.data.length, 0) <= SYNC_WRITE_BYTES;
  const made = new Set<string>();
  for (const f of files) {
    const target = path.join(dir, f.path);
    const parent = path.dirname(target);
    if (parent !== dir && !made.has(parent)) {
      if (sync) mkdirSync(parent, { recursive: true });
      else await mkdir(parent, { recursive: true });
      made.add(parent);
    }
    if (sync) writeFileSync(target, f.data, { flag: 'wx', mode: 0o644 });
    else await writeFile(target, f.data, { flag: 'wx', mode: 0o644 });
  }
}
