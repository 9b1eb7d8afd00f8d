import { Type, type Static } from '@sinclair/typebox';
import { ROLES, SCOPES, type Role, type Scope } from './scopes.js';

export { ROLES, SCOPES, type Role, type Scope };

export const UserName = Type.String({
  pattern: '^[a-z0-9_.-]{1,64}$',
  description: 'lower-case letters, digits, "_", "." and "-"; 1 to 64 characters',
});
/**
 * The name typed at sign-in: a corral user name, or one a directory knows ("Alice",
 * "smith, john") — the directory maps it to a corral name (auth.ldap), so it is not held to
 * UserName here. Control characters never name anyone.
 */
export const LoginName = Type.String({ minLength: 1, maxLength: 256, pattern: '^[^\\u0000-\\u001f\\u007f]+$' });
export const Password = Type.String({ minLength: 8, maxLength: 1024 });
export const ScopeSchema = Type.Union(SCOPES.map((s) => Type.Literal(s)));

export const UserSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  role: Type.Union(ROLES.map((r) => Type.Literal(r))),
  credits: Type.Integer(),
  createdAt: Type.String({ format: 'date-time' }),
});
export type User = Static<typeof UserSchema>;

export const TokenInfoSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  user: Type.String(),
  scopes: Type.Array(ScopeSchema),
  createdAt: Type.String({ format: 'date-time' }),
  expiresAt: Type.String({ format: 'date-time' }),
  revokedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  lastUsedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});
export type TokenInfo = Static<typeof TokenInfoSchema>;

/** Who is making a request, and what they may do. */
export interface Principal {
  user: User;
  scopes: ReadonlySet<Scope>;
  via: { kind: 'session'; sessionHash: string; csrfToken: string } | { kind: 'token'; tokenId: string };
}
