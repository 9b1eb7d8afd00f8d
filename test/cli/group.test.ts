/** `corral group ls|show|quota|grant` against a live server; quotas take units like `job run -m`. */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { api, createUser, startTestServer, type TestServer } from '../helpers/server.js';
import { cliAgainst, type CliResult } from './run-cli.js';

vi.setConfig({ testTimeout: 120_000 });

let server: TestServer;
let corral: (args: string[]) => Promise<CliResult>;
let cleanup: () => Promise<void>;
let annToken: string;
beforeAll(async () => {
  server = await startTestServer();
  ({ corral, cleanup } = await cliAgainst(server, 'corral-cli-groups-'));
  annToken = await createUser(server, 'ann');
  await createUser(server, 'ben');
  await api(server, server.adminToken, 'PUT', '/api/v1/users/ann/groups', { groups: ['team', 'ops'] });
  await api(server, server.adminToken, 'PUT', '/api/v1/users/ben/groups', { groups: ['team'] });
});
afterAll(async () => {
  await server.stop();
  await cleanup();
});

describe('corral group', () => {
  it('lists groups with their members and shows one', async () => {
    const ls = await corral(['group', 'ls']);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toBe('GROUP  MEMBERS\nops    ann\nteam   ann, ben\n');
    const show = await corral(['group', 'show', 'team']);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toContain('ann     admin');
    expect(show.stdout).toContain('memory:     server default');
    const none = await corral(['group', 'show', 'nobody-here']);
    expect([none.code, none.stderr]).toEqual([1, 'group_not_found: no group "nobody-here" (nobody is in it and it has no quotas)\n']);
  });

  it('sets quotas with units, clears them, and names the flag of a bad value', async () => {
    const set = await corral(['group', 'quota', 'team', '-m', '512M', '--instances', '3', '--jobs', '0']);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toContain('memory:     512M');
    expect(set.stdout).toContain('jobs:       no limit');
    const quotas = await api(server, server.adminToken, 'GET', '/api/v1/groups/team/quotas');
    expect(quotas.body.quotas).toMatchObject({ memoryBytes: 512 * 1024 ** 2, instances: 3, concurrentJobs: 0 });

    const cleared = await corral(['group', 'quota', 'team', '--clear', 'memory', '--json']);
    expect(cleared.code, cleared.stderr).toBe(0);
    expect(JSON.parse(cleared.stdout).quotas.memoryBytes ?? null).toBeNull();

    const bad = await corral(['group', 'quota', 'team', '-m', '512X']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('-m: "512X" is not a size');
    const unknown = await corral(['group', 'quota', 'team', '--clear', 'disk']);
    expect(unknown.stderr).toContain('--clear: "disk" is not a quota');
  });

  it('grants credits to each member', async () => {
    const grant = await corral(['group', 'grant', 'team', '+40', '--reason', 'workshop']);
    expect(grant.code, grant.stderr).toBe(0);
    expect(grant.stdout).toBe('MEMBER  BALANCE\nann     40\nben     40\n');
    expect((await corral(['group', 'grant', 'team', 'lots'])).stderr).toContain('amount must be like +1000 or -500, got "lots"');
  });
});

describe('GET /api/v1/groups', () => {
  it('lists every group with members, sources and quotas in one read; admins only; a malformed or unknown name is refused', async () => {
    await api(server, server.adminToken, 'PUT', '/api/v1/groups/empty-but-limited/quotas', { instances: 2 });
    const all = await api(server, server.adminToken, 'GET', '/api/v1/groups');
    expect(all.status).toBe(200);
    const byName = Object.fromEntries((all.body.groups as { group: string }[]).map((g) => [g.group, g]));
    expect(byName.team).toMatchObject({ members: [{ user: 'ann', source: 'admin' }, { user: 'ben', source: 'admin' }] });
    expect(byName.ops).toMatchObject({ members: [{ user: 'ann', source: 'admin' }] });
    expect(byName['empty-but-limited']).toMatchObject({ members: [], quotas: { instances: 2 } });
    const one = await api(server, server.adminToken, 'GET', '/api/v1/groups/team');
    expect(one.body.members.map((m: { user: string }) => m.user)).toEqual(['ann', 'ben']);

    const refused = await api(server, annToken, 'GET', '/api/v1/groups');
    expect([refused.status, refused.body.error.code]).toEqual([403, 'forbidden']);
    const unknown = await api(server, server.adminToken, 'GET', '/api/v1/groups/nobody-here');
    expect([unknown.status, unknown.body.error.code]).toEqual([404, 'group_not_found']);
    const bad = await api(server, server.adminToken, 'GET', `/api/v1/groups/bad%01name`);
    expect([bad.status, bad.body.error.code]).toEqual([400, 'validation_failed']);
  });
});
