/** For test files that need Docker: the engine the globalSetup found (or why there is none). */
import { describe, inject, it } from 'vitest';

const host = inject('dockerHost');

/** The engine's address, or undefined when there is none. */
export const dockerHost: string | undefined = host || undefined;

// The driver, the CLI and servers spawned by tests find the engine here.
if (dockerHost) process.env.DOCKER_HOST = dockerHost;

/** describe() when an engine answers; otherwise one skipped test that says why. */
export function describeDocker(name: string, fn: () => void): void {
  if (dockerHost) describe(name, fn);
  else describe(name, () => it.skip(`no Docker engine: ${inject('dockerUnavailable')}`, () => {}));
}
