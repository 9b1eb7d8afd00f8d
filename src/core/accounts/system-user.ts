import type { User } from './types.js';

/**
 * An admin identity for core components that watch every user's instances (the credits
 * meter, metrics). It is never stored, cannot log in and holds no token.
 */
export function systemUser(name: string): User {
  return { id: `corral-${name}`, name: `corral-${name}`, role: 'admin', credits: 0, createdAt: new Date(0).toISOString() };
}
