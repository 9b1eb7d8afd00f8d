/** The shared secret the proxy role presents to its manager, and its constant-time check. */
import { safeEqual } from '../http/auth.js';

export const INTERNAL_HEADER = 'x-corral-internal';

export const secretMatches = (sent: unknown, secret: string): boolean => typeof sent === 'string' && safeEqual(sent, secret);
