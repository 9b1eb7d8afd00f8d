/** `corral token revoke NAME|ID` and `token create --scope/--ttl` refusals, against a live server. */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SCOPES } from '../../src/core/accounts/scopes.js';
import { api, startTestServer, type TestServer } from '../helpers/server.js';
import { cliAgainst, type CliResult } from './run-cli.js';

vi.setConfig({ testTimeout: 120_000 });

let server: TestServer;
let corral: (args: string[]) => Promise<CliResult>;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  server = await startTestServer();
  ({ corral, cleanup } = await cliAgainst(server, 'corral-cli-tokens-'));
});
afterAll(async () => {
  await server.stop();
  await cleanup();
});

const tokens = async () => (await api(server, server.adminToken, 'GET', '/api/v1/tokens')).body.tokens as { id: string; name: string; revokedAt: string | null }[];

describe('corral token', () => {
  it('revoke takes a name or an id', async () => {
    expect((await corral(['token', 'create', 'ci-runner', '--ttl', '30d'])).code).toBe(0);
    expect((await corral(['token', 'create', 'laptop'])).code).toBe(0);

    const byName = await corral(['token', 'revoke', 'ci-runner']);
    expect(byName.code, byName.stderr).toBe(0);
    expect(byName.stdout).toMatch(/^revoked token "ci-runner" \([0-9a-f-]{36}\)\n$/);
    const laptop = (await tokens()).find((t) => t.name === 'laptop')!;
    const byId = await corral(['token', 'revoke', laptop.id]);
    expect(byId.code, byId.stderr).toBe(0);
    expect((await tokens()).filter((t) => ['ci-runner', 'laptop'].includes(t.name)).every((t) => t.revokedAt)).toBe(true);

    const again = await corral(['token', 'revoke', 'ci-runner']);
    expect([again.code, again.stderr]).toEqual([1, 'token_revoked: the token "ci-runner" is already revoked\n']);
    const none = await corral(['token', 'revoke', 'no-such-token']);
    expect([none.code, none.stderr]).toEqual([1, 'token_not_found: no token named "no-such-token" (corral token ls lists them)\n']);
    // The test's own token is still good.
    expect((await corral(['token', 'ls'])).code).toBe(0);
  });

  it('a bad --scope lists the valid scopes; nothing is created', async () => {
    const r = await corral(['token', 'create', 'scoped', '-s', 'jobs:read,jobs:rwx']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`bad_input: -s: unknown scope "jobs:rwx"; valid scopes: ${SCOPES.join(', ')}\n`);
    const long = await corral(['token', 'create', 'scoped', '--scope', 'everything']);
    expect(long.stderr).toMatch(/^bad_input: --scope: unknown scope "everything"; valid scopes: account:write, /);
    expect((await tokens()).some((t) => t.name === 'scoped')).toBe(false);
  });

  it('--ttl in units; one the server refuses is told in the flag\'s terms', async () => {
    const short = await corral(['token', 'create', 'brief', '--ttl', '5s']);
    expect([short.code, short.stderr]).toEqual([1, 'bad_input: --ttl: at least 1m\n']);
    const ok = await corral(['token', 'create', 'brief', '--ttl', '2h', '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    const { info } = JSON.parse(ok.stdout) as { info: { createdAt: string; expiresAt: string } };
    expect(Math.abs(Date.parse(info.expiresAt) - Date.parse(info.createdAt) - 2 * 3600 * 1000)).toBeLessThan(1500);
  });
});
