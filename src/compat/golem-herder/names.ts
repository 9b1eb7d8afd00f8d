/**
 * golem-herder names (daemon names, document ids) may hold characters corral's instance names
 * cannot; each maps to one instance name: kept as is when it fits, else a readable part plus a
 * hash of the original. The original rides in the instance's env, where ls reads it back.
 */
import { createHash } from 'node:crypto';

/** `daemon-web`, or `golem-my_doc` → `golem-my-doc-1a2b3c4d`. */
export function instanceNameFor(kind: 'daemon' | 'golem', name: string): string {
  if (/^[a-z0-9][a-z0-9-]{0,50}$/.test(name)) return `${kind}-${name}`;
  const readable = name.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40);
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  return `${kind}-${readable ? `${readable}-` : ''}${hash}`;
}

/** The env keys that carry the original name. */
export const DAEMON_ENV = 'GOLEM_HERDER_DAEMON';
export const GOLEM_ENV = 'GOLEM_HERDER_DOCUMENT';
/** A daemon's `image` (a runtime name on the process driver), for ls. */
export const IMAGE_ENV = 'GOLEM_HERDER_IMAGE';

/** The old herder's routes (but spawn) answered every method; so do these. */
export const ANY_METHOD = ['GET', 'POST', 'PUT', 'DELETE'] as const;
