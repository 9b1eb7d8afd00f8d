/**
 * Putting what a user typed into LDAP strings: into a DN attribute value (RFC 4514) and into
 * a search filter's assertion value (RFC 4515). Without this a name like `*)(uid=*` widens a
 * search, and `alice,ou=admins` names another entry.
 */
import { Filter } from 'ldapts';

/**
 * RFC 4514 §2.4: `\` before `"`, `+`, `,`, `;`, `<`, `>`, `\`, `=` (the last is not required
 * but harmless), before a leading `#` or space and a trailing space; NUL as `\00`.
 */
export function escapeDnValue(value: string): string {
  let out = value.replace(/["+,;<>\\=]/g, (c) => `\\${c}`).replace(/\0/g, '\\00');
  if (out.startsWith('#') || out.startsWith(' ')) out = `\\${out}`;
  if (out.endsWith(' ') && !out.endsWith('\\ ')) out = `${out.slice(0, -1)}\\ `;
  return out;
}

/** RFC 4515 §3: `*`, `(`, `)`, `\` and NUL as `\2a`, `\28`, `\29`, `\5c`, `\00`. */
export function escapeFilterValue(value: string): string {
  return Filter.escape(value);
}

/** Replaces each `{key}` in `template` with its value, escaped by `escape`. */
export function fillTemplate(template: string, values: Record<string, string>, escape: (v: string) => string): string {
  return template.replace(/\{(\w+)\}/g, (whole, key: string) => (key in values ? escape(values[key]!) : whole));
}
