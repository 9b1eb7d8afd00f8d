/**
 * What `corral deploy` leaves out of the upload: `.git` and `node_modules` always (unless
 * re-included with `!`), plus what the directory's `.corralignore` names, in gitignore
 * syntax — `#` comments, `!` re-includes, a leading `/` anchors to the top, a trailing `/`
 * matches directories only, `*` and `?` stay within a path segment, `**` crosses segments,
 * a pattern without a `/` matches at any depth. The last matching pattern wins.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';

export const IGNORE_FILE = '.corralignore';
const DEFAULTS = ['.git/', 'node_modules/'];

interface Rule {
  negate: boolean;
  dirOnly: boolean;
  regex: RegExp;
}

export type IgnoreTest = (relPath: string, isDir: boolean) => boolean;

/** The ignore test for `dir`: its `.corralignore` (if any) after the defaults. */
export async function ignoreFor(dir: string): Promise<IgnoreTest> {
  const text = await readFile(path.join(dir, IGNORE_FILE), 'utf8').catch(() => '');
  return compileIgnore([...DEFAULTS, ...text.split(/\r?\n/)]);
}

/** Compiles gitignore lines; the test takes a path relative to the top, with `/` separators. */
export function compileIgnore(lines: string[]): IgnoreTest {
  const rules = lines.map(parseLine).filter((r): r is Rule => r !== undefined);
  const ignoredItself = (rel: string, isDir: boolean): boolean => {
    let ignored = false;
    for (const r of rules) if ((!r.dirOnly || isDir) && r.regex.test(rel)) ignored = !r.negate;
    return ignored;
  };
  return (relPath, isDir) => {
    const parts = relPath.replace(/^\.\/+/, '').split('/').filter(Boolean);
    // As in git: nothing inside an ignored directory comes back.
    for (let i = 1; i < parts.length; i++) if (ignoredItself(parts.slice(0, i).join('/'), true)) return true;
    return parts.length > 0 && ignoredItself(parts.join('/'), isDir);
  };
}

function parseLine(raw: string): Rule | undefined {
  let line = raw.replace(/(?<!\\)\s+$/, '');
  if (!line || line.startsWith('#')) return undefined;
  const negate = line.startsWith('!');
  if (negate) line = line.slice(1);
  if (line.startsWith('\\')) line = line.slice(1);
  const dirOnly = line.endsWith('/');
  if (dirOnly) line = line.replace(/\/+$/, '');
  if (!line) return undefined;
  const anchored = line.includes('/');
  line = line.replace(/^\//, '');
  const body = globToRegex(line);
  return { negate, dirOnly, regex: new RegExp(anchored ? `^${body}$` : `^(?:.*/)?${body}$`) };
}

function globToRegex(glob: string): string {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        const slash = glob[i + 2] === '/';
        out += slash ? '(?:.*/)?' : '.*';
        i += slash ? 2 : 1;
      } else out += '[^/]*';
    } else if (c === '?') out += '[^/]';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 1);
      if (end < 0) out += '\\[';
      else {
        out += `[${glob.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else if (c === '\\' && i + 1 < glob.length) out += `\\${glob[++i]!}`;
    else out += /[.+^${}()|\\/]/.test(c) ? `\\${c}` : c;
  }
  return out;
}
