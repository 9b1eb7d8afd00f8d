/**
 * The listing (`GET /api/v1/instances`) is built as JSON text with each stored spec spliced
 * in: it must say exactly what showing each instance says, in creation order, and only the
 * caller's own instances (an admin's: everyone's).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createUser, startTestServer, type TestServer } from '../helpers/server.js';
import { createInstance, waitForState } from './helpers.js';

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
});
