/**
 * `corral serve` as a child process for benchmarks and profiles, and the few API calls they
 * make: the test helpers' own (test/helpers/server.ts imports no vitest), under the names the
 * benchmarks use.
 */
import { createToken, login } from '../test/helpers/server.js';

export { ADMIN_PASSWORD, api, ROOT, spawnServer, tempDir, type ChildServer } from '../test/helpers/server.js';

/** Logs in as `name` and makes a token with every scope of the user. */
export async function tokenFor(url: string, name: string, password: string, tokenName: string): Promise<string> {
  return createToken(url, await login(url, name, password), tokenName);
}
