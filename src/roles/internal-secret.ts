/** The shared secret the proxy role presents to its manager, and its constant-time check. */
import { timingSafeEqual } from 'node:crypto';

export const INTERNAL_HEADER = 'x-corral-internal';

export function secretMatches(sent: unknown, secret: string): boolean {
  if (typeof sent !== 'string') return false;
  const a = Buffer.from(sent);
  const b = Buffer.from(secret);
  return a.length === b.length && timingSafeEqual(a, b);
}
