/**
 * golem-herder's credits and daemons belong to an email; corral's belong to a user. Each email
 * is one corral user whose name is derived from it (readable part + hash, so it fits corral's
 * name pattern and two emails never share a user), created the first time a token is made
 * for it. The email itself travels in the token's name, which inspect reads back.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { User } from '../../core/accounts/index.js';
import type { Corral } from '../../core/corral.js';
import { isCorralError } from '../../core/errors.js';

const TOKEN_NAME_PREFIX = 'golem-herder ';

export function userNameForEmail(email: string): string {
  const readable = email.toLowerCase().replace(/[^a-z0-9_.-]+/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 48) || 'user';
  const hash = createHash('sha256').update(email).digest('hex').slice(0, 8);
  return `${readable}-${hash}`;
}

/** The user an email stands for, created (with a random password nobody knows) if needed. */
export async function userForEmail(corral: Corral, email: string): Promise<User> {
  return ensureUser(corral, userNameForEmail(email));
}

/** An existing user, or a new one with role `user` and an unusable password. */
export async function ensureUser(corral: Corral, name: string): Promise<User> {
  const users = corral.accounts.users;
  try {
    return await users.get(name);
  } catch (e) {
    if (!isCorralError(e) || e.code !== 'user_not_found') throw e;
  }
  try {
    return await users.create({ name, password: randomBytes(24).toString('base64url'), role: 'user' });
  } catch (e) {
    // Two first requests at once: the other one made it.
    if (isCorralError(e) && e.code === 'user_exists') return users.get(name);
    throw e;
  }
}

/** A unique token name that carries the email. */
export const tokenNameFor = (email: string) => `${TOKEN_NAME_PREFIX}${randomUUID().slice(0, 8)} ${email}`;

/** The email a golem-herder token name carries, or undefined for other tokens. */
export function emailOfTokenName(name: string): string | undefined {
  if (!name.startsWith(TOKEN_NAME_PREFIX)) return undefined;
  return name.slice(TOKEN_NAME_PREFIX.length).split(' ').slice(1).join(' ');
}
