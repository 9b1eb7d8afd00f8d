/**
 * Quotas per group: a member's quotas come from their groups (the most generous one wins)
 * unless an admin set their own; a real instance creation is refused at the group's limit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createUser, startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
let carol: string;
beforeAll(async () => {
  server = await startTestServer({ quotas: { instances: 10 } });
  carol = await createUser(server, 'carol');
}, 60_000);
afterAll(async () => {
  await server?.stop();
});

const admin = (method: string, path: string, body?: unknown) => api(server, server.adminToken, method, path, body);
const carolsQuota = async () => (await api(server, carol, 'GET', '/api/v1/quotas')).body.quotas.instances as number;

describe('quotas per group', () => {
  it("apply to the group's members, the most generous group winning, and refuse at the limit", async () => {
    expect((await admin('PUT', '/api/v1/groups/team/quotas', { instances: 1 })).body).toEqual({ group: 'team', quotas: { instances: 1, runningInstances: null, memoryBytes: null, concurrentJobs: null } });
    await admin('PUT', '/api/v1/groups/big/quotas', { instances: 5 });
    expect(await carolsQuota()).toBe(10);
    await admin('PUT', '/api/v1/users/carol/groups', { groups: ['team'] });
    expect(await carolsQuota()).toBe(1);
    await admin('PUT', '/api/v1/users/carol/groups', { groups: ['team', 'big'] });
    expect(await carolsQuota()).toBe(5);
    await admin('PUT', '/api/v1/users/carol/groups', { groups: ['team'] });

    expect((await api(server, carol, 'POST', '/api/v1/instances', { name: 'one', command: ['sleep', '600'] })).status).toBe(201);
    const second = await api(server, carol, 'POST', '/api/v1/instances', { name: 'two', command: ['sleep', '600'] });
    expect(second.status).toBe(403);
    expect(second.body.error.code).toBe('quota_exceeded');

    // Clearing the group's value leaves the server default.
    await admin('PUT', '/api/v1/groups/team/quotas', { instances: null });
    expect(await carolsQuota()).toBe(10);
  });

  it('refuses bad input and non-admins', async () => {
    expect((await admin('PUT', '/api/v1/groups/team/quotas', { instances: -1 })).status).toBe(400);
    expect((await admin('PUT', '/api/v1/groups/team/quotas', {})).status).toBe(400);
    expect((await admin('PUT', '/api/v1/groups/team/quotas', { bogus: 1 })).status).toBe(400);
    expect((await api(server, carol, 'PUT', '/api/v1/groups/team/quotas', { instances: 100 })).status).toBe(403);
    expect((await api(server, carol, 'GET', '/api/v1/groups/team/quotas')).status).toBe(403);
  });

  it('grants credits to each member of a group', async () => {
    const dave = await createUser(server, 'dave');
    await admin('PUT', '/api/v1/users/dave/groups', { groups: ['crew'] });
    await admin('PUT', '/api/v1/users/carol/groups', { groups: ['crew', 'team'] });
    const r = await admin('POST', '/api/v1/groups/crew/credits', { amount: 50, reason: 'term start' });
    expect(r.status).toBe(200);
    expect(r.body.granted.map((g: { user: string }) => g.user).sort()).toEqual(['carol', 'dave']);
    expect((await api(server, dave, 'GET', '/api/v1/me')).body.user.credits).toBe(50);
    expect((await admin('POST', '/api/v1/groups/crew/credits', { amount: 0 })).status).toBe(400);
    expect((await api(server, dave, 'POST', '/api/v1/groups/crew/credits', { amount: 5 })).status).toBe(403);
  });
});
