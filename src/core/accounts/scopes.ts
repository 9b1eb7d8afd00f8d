import { SCOPES, type Role, type Scope } from './types.js';

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
