/**
 * Sharing an instance with a group: members pass the proxy, others get the same 404 as for
 * an instance that does not exist; membership set by an admin (PUT /users/{name}/groups)
 * takes effect on the next request and its removal too. Bad input to the groups API is
 * refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api } from '../helpers/server.js';
import { runCli } from '../cli/run-cli.js';
import { hostName, proxyWorld, type ProxyWorld } from './fixtures.js';

let w: ProxyWorld;
const APP = hostName('app', 'alice');
beforeAll(async () => {
  w = await proxyWorld();
});
afterAll(async () => {
  await w.close();
});

const bobOpens = async () => (await w.onHost(APP, '/', { authorization: `Bearer ${w.bob.token}` })).status;

describe('sharing an instance with a group', () => {
  it('lets members of the group through the proxy, and only them', async () => {
    const shared = await api(w.server, w.alice.token, 'PUT', '/api/v1/proxy/alice/app', { sharedWithGroups: ['team'] });
    expect(shared.status).toBe(200);
    expect(shared.body.sharedWithGroups).toEqual(['team']);
    expect(await bobOpens()).toBe(404);

    const joined = await api(w.server, w.server.adminToken, 'PUT', '/api/v1/users/bob/groups', { groups: ['team', 'other'] });
    expect(joined.status).toBe(200);
    expect(joined.body.memberships).toEqual([
      { group: 'other', source: 'admin' },
      { group: 'team', source: 'admin' },
    ]);
    expect(await bobOpens()).toBe(200);
    // A user reads their own groups; another user's are for admins.
    expect((await api(w.server, w.bob.token, 'GET', '/api/v1/users/bob/groups')).body.groups).toEqual(['other', 'team']);
    expect((await api(w.server, w.bob.token, 'GET', '/api/v1/users/alice/groups')).status).toBe(403);

    // A later change of other settings keeps the groups.
    expect((await api(w.server, w.alice.token, 'PUT', '/api/v1/proxy/alice/app', { idleTimeoutSeconds: 0 })).body.sharedWithGroups).toEqual(['team']);

    await api(w.server, w.server.adminToken, 'PUT', '/api/v1/users/bob/groups', { groups: ['other'] });
    expect(await bobOpens()).toBe(404);
  });

  it('refuses bad input and non-admins', async () => {
    const cases: [string, string, unknown, number][] = [
      [w.server.adminToken, '/api/v1/users/bob/groups', { groups: ['bad\u0001name'] }, 400],
      [w.server.adminToken, '/api/v1/users/bob/groups', { groups: ['a', 'a'] }, 400],
      [w.server.adminToken, '/api/v1/users/bob/groups', { groups: [], extra: 1 }, 400],
      [w.server.adminToken, '/api/v1/users/nobody/groups', { groups: [] }, 404],
      [w.bob.token, '/api/v1/users/bob/groups', { groups: ['team'] }, 403],
    ];
    for (const [token, path, body, status] of cases) {
      const r = await api(w.server, token, 'PUT', path, body);
      expect(r.status, JSON.stringify(body)).toBe(status);
      expect(r.body.error.code).toBeTruthy();
    }
    expect((await api(w.server, w.alice.token, 'PUT', '/api/v1/proxy/alice/app', { sharedWithGroups: [''] })).status).toBe(400);
  });

  it('is managed from the CLI too (corral user groups)', async () => {
    await api(w.server, w.alice.token, 'PUT', '/api/v1/proxy/alice/app', { sharedWithGroups: ['team'] });
    const env = { CORRAL_URL: w.server.url, CORRAL_TOKEN: w.server.adminToken, XDG_CONFIG_HOME: '/nonexistent' };
    const set = await runCli(['user', 'groups', 'bob', 'team', 'ops', '--json'], { env });
    expect(set.stderr).toBe('');
    expect((JSON.parse(set.stdout) as { groups: string[] }).groups).toEqual(['ops', 'team']);
    expect(await bobOpens()).toBe(200);
    const shown = await runCli(['user', 'groups', 'bob'], { env });
    expect(shown.stdout).toMatch(/team\s+admin/);
    expect((await runCli(['user', 'groups', 'bob', '--none'], { env })).code).toBe(0);
    expect(await bobOpens()).toBe(404);
  });
});
