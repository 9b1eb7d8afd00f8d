/** `corral group ls|show|quota|grant` against a live server; quotas take units like `job run -m`. */
import path from 'node:path';
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { api, createUser, startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import { runCli } from './run-cli.js';

vi.setConfig({ testTimeout: 120_000 });

let server: TestServer;
let home: string;
let corral: (args: string[]) => ReturnType<typeof runCli>;
beforeAll(async () => {
  server = await startTestServer();
  home = await tempDir('corral-cli-groups-');
  const env = { XDG_CONFIG_HOME: path.join(home, 'xdg'), CORRAL_URL: server.url, CORRAL_TOKEN: server.adminToken };
  corral = (args) => runCli(args, { env });
  await createUser(server, 'ann');
  await createUser(server, 'ben');
  await api(server, server.adminToken, 'PUT', '/api/v1/users/ann/groups', { groups: ['team', 'ops'] });
  await api(server, server.adminToken, 'PUT', '/api/v1/users/ben/groups', { groups: ['team'] });
});
afterAll(async () => {
  await server.stop();
  await rm(home, { recursive: true, force: true });
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
