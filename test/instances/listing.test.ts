/**
 * The listing (`GET /api/v1/instances`) is built as JSON text with each stored spec spliced
 * in: it must say exactly what showing each instance says, in creation order, and only the
 * caller's own instances (an admin's: everyone's).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createUser, startTestServer, type TestServer } from '../helpers/server.js';
import { createInstance, waitFor, waitForState } from './helpers.js';

let server: TestServer;
let alice: string;
let bob: string;

beforeAll(async () => {
  server = await startTestServer();
  alice = await createUser(server, 'alice');
  bob = await createUser(server, 'bob');
});
afterAll(() => server?.stop());

describe('instance listing', () => {
  it('lists the caller’s instances as showing each would, in creation order; admins see all', async () => {
    const made = [
      await createInstance(server, alice, { name: 'plain', command: ['sleep', '1000'] }),
      await createInstance(server, alice, {
        name: 'dressed',
        shell: 'echo "quote \\" and ünïcödé"; sleep 1000',
        env: { GREETING: 'a "quoted" value\nwith a newline' },
        ports: [{ name: 'web' }],
        limits: { memoryBytes: 64 * 1024 * 1024 },
        restart: 'on-failure',
      }),
      await createInstance(server, alice, { name: 'done', shell: 'exit 3', restart: 'never' }),
    ];
    await createInstance(server, bob, { name: 'bobs', command: ['sleep', '1000'] });
    await waitForState(server, alice, made[2].id, 'failed');

    const mine = await api(server, alice, 'GET', '/api/v1/instances');
    expect(mine.status).toBe(200);
    expect(mine.headers.get('content-type')).toMatch(/^application\/json/);
    expect(mine.body.instances.map((i: { name: string }) => i.name)).toEqual(['plain', 'dressed', 'done']);
    for (const listed of mine.body.instances) {
      const shown = await api(server, alice, 'GET', `/api/v1/instances/${listed.id}`);
      expect(listed).toEqual(shown.body);
    }
    expect(mine.body.instances[1].spec.env.GREETING).toBe('a "quoted" value\nwith a newline');

    const all = await api(server, server.adminToken, 'GET', '/api/v1/instances');
    expect(all.body.instances.map((i: { owner: string; name: string }) => `${i.owner}:${i.name}`).sort()).toEqual(
      ['alice:done', 'alice:dressed', 'alice:plain', 'bob:bobs'],
    );
    const theirs = await api(server, bob, 'GET', '/api/v1/instances');
    expect(theirs.body.instances.map((i: { name: string }) => i.name)).toEqual(['bobs']);
  }, 60_000);

  /**
   * The listing keeps each instance's document and reads again only what changed: listed
   * before and after every kind of change, it must say what showing each instance says.
   */
  it('stays right after each kind of change: create, stop and start, exit, rename and spec, delete, a deleted owner', async () => {
    const carol = await createUser(server, 'carol');
    const dave = await createUser(server, 'dave');
    /** The caller's listing, each document checked against `show`; returns `name → document`. */
    const listed = async (token: string) => {
      const res = await api(server, token, 'GET', '/api/v1/instances');
      expect(res.status).toBe(200);
      for (const doc of res.body.instances) expect(doc).toEqual((await api(server, token, 'GET', `/api/v1/instances/${doc.id}`)).body);
      return new Map<string, any>(res.body.instances.map((d: any) => [d.name, d]));
    };
    const both = async () => ({ mine: await listed(carol), all: await listed(server.adminToken) });

    const a = await createInstance(server, carol, { name: 'a', command: ['sleep', '1000'] });
    await both();
    const b = await createInstance(server, carol, { name: 'b', shell: 'read line; exit 4', restart: 'never' });
    let now = await both();
    expect([...now.mine.keys()]).toEqual(['a', 'b']);
    expect(now.all.get('b')).toMatchObject({ id: b.id, owner: 'carol' });

    await api(server, carol, 'POST', '/api/v1/instances/a/stop');
    now = await both();
    expect(now.mine.get('a')).toMatchObject({ desiredState: 'stopped', state: 'stopped' });
    await api(server, carol, 'POST', '/api/v1/instances/a/start');
    now = await both();
    expect(now.mine.get('a')).toMatchObject({ desiredState: 'running', state: 'running' });

    // A change the supervisor writes on its own: the workload ends.
    await api(server, carol, 'POST', `/api/v1/instances/${b.id}/signal`, { signal: 'SIGKILL' });
    await waitFor(server, carol, b.id, (i) => i.state === 'failed' || i.state === 'exited');
    now = await both();
    expect(['failed', 'exited']).toContain(now.mine.get('b').state);

    const patched = await api(server, carol, 'PATCH', `/api/v1/instances/${a.id}`, { name: 'a2', env: { COLOUR: 'teal' } });
    expect(patched.status).toBe(200);
    now = await both();
    expect(now.mine.has('a')).toBe(false);
    expect(now.mine.get('a2')).toMatchObject({ id: a.id, spec: { name: 'a2', env: { COLOUR: 'teal' } } });

    expect((await api(server, carol, 'DELETE', `/api/v1/instances/${b.id}`)).status).toBe(204);
    now = await both();
    expect([...now.mine.keys()]).toEqual(['a2']);
    expect([...now.all.values()].some((d) => d.id === b.id)).toBe(false);

    // A user sees only theirs; the owner's deletion takes their instances out of the admin's listing.
    await createInstance(server, dave, { name: 'd', command: ['sleep', '1000'] });
    expect([...(await listed(dave)).keys()]).toEqual(['d']);
    expect((await listed(server.adminToken)).get('d')).toMatchObject({ owner: 'dave' });
    expect((await api(server, server.adminToken, 'DELETE', '/api/v1/users/dave')).status).toBe(204);
    const after = await listed(server.adminToken);
    expect([...after.values()].some((d) => d.owner === 'dave')).toBe(false);
    expect(after.get('a2')).toMatchObject({ owner: 'carol' });
  }, 60_000);
});
