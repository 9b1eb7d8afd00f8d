/**
 * Roles and token scopes: the lists, which scopes a role may hold, and what a held scope
 * allows. This module imports nothing: the CLI reads the lists on every call (help text,
 * `--scope` checks) without loading the schemas in types.ts.
 */
export const ROLES = ['admin', 'user'] as const;
export type Role = (typeof ROLES)[number];

/**
 * Every scope a token can carry. `admin:*` and `metrics:read` are only for admins.
 * `account:write`: change the account itself (its password); a session always may.
 */
export const SCOPES = [
  'account:write',
  'admin:read',
  'admin:write',
  'instances:read',
  'instances:write',
  'jobs:read',
  'jobs:write',
  'proxy:read',
  'proxy:write',
  'metrics:read',
] as const;
export type Scope = (typeof SCOPES)[number];

/** Scopes only admins may hold: /metrics shows every user's aggregate activity. */
const ADMIN_ONLY = (s: Scope) => s.startsWith('admin:') || s === 'metrics:read';

/** The scopes a role may hold: everything for admins, everything but admin:* and metrics:read for users. */
export function scopesForRole(role: Role): Scope[] {
  return role === 'admin' ? [...SCOPES] : SCOPES.filter((s) => !ADMIN_ONLY(s));
}

/** `write` implies `read`: a token with instances:write may also read instances. */
export function hasScope(held: ReadonlySet<Scope>, wanted: Scope): boolean {
  if (held.has(wanted)) return true;
  const [area, level] = wanted.split(':');
  return level === 'read' && held.has(`${area}:write` as Scope);
}
