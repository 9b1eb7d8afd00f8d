import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createUser, startTestServer, type TestServer } from '../helpers/server.js';
import { createInstance } from './helpers.js';

describe('instance access and validation', () => {
  let server: TestServer;
  let alice: string;
  let bob: string;
  beforeAll(async () => {
    server = await startTestServer();
    alice = await createUser(server, 'alice');
    bob = await createUser(server, 'bob');
  });
  afterAll(() => server.stop());

  it("answers 404 for another user's instance, and admins see all", async () => {
    const inst = await createInstance(server, alice, { name: 'private', command: ['sleep', '1000'] });
    for (const [method, suffix] of [
      ['GET', ''],
      ['DELETE', ''],
      ['POST', '/stop'],
      ['POST', '/start'],
      ['POST', '/restart'],
      ['GET', '/logs'],
    ] as const) {
      const res = await api(server, bob, method, `/api/v1/instances/${inst.id}${suffix}`);
      expect(res.status, `${method} ${suffix}`).toBe(404);
      expect(res.body.error.code).toBe('instance_not_found');
    }
    expect((await api(server, bob, 'PATCH', `/api/v1/instances/${inst.id}`, { env: {} })).status).toBe(404);
    expect((await api(server, bob, 'POST', `/api/v1/instances/${inst.id}/signal`, { signal: 'SIGKILL' })).status).toBe(404);
    expect((await api(server, bob, 'GET', '/api/v1/instances/alice:private')).status).toBe(404);
    const attach = await fetch(`${server.url}/api/v1/instances/${inst.id}/attach`, {
      headers: { authorization: `Bearer ${bob}`, connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' },
    }).catch(() => undefined);
    if (attach) expect(attach.status).toBe(404);
    expect((await api(server, bob, 'GET', '/api/v1/instances')).body.instances).toHaveLength(0);

    const asAdmin = await api(server, server.adminToken, 'GET', `/api/v1/instances/alice:private`);
    expect(asAdmin.status).toBe(200);
    expect(asAdmin.body.owner).toBe('alice');
    const all = await api(server, server.adminToken, 'GET', '/api/v1/instances');
    expect(all.body.instances.map((i: { id: string }) => i.id)).toContain(inst.id);
    expect((await api(server, alice, 'DELETE', `/api/v1/instances/private`)).status).toBe(204);
  });

  it('needs a token with the instances scopes', async () => {
    expect((await api(server, undefined, 'GET', '/api/v1/instances')).status).toBe(401);
    const login = await fetch(`${server.url}/api/v1/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'alice', password: 'alice-password' }),
    });
    const cookie = login.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    const { csrfToken } = (await login.json()) as { csrfToken: string };
    const res = await fetch(`${server.url}/api/v1/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie, 'x-csrf-token': csrfToken },
      body: JSON.stringify({ name: 'read-only', scopes: ['instances:read'] }),
    });
    const { token } = (await res.json()) as { token: string };
    const denied = await api(server, token, 'POST', '/api/v1/instances', { name: 'x', command: ['true'] });
    expect(denied.status).toBe(403);
    expect((await api(server, token, 'GET', '/api/v1/instances')).status).toBe(200);
  });

  it('refuses bad specs with clear errors', async () => {
    const bad: [unknown, number, RegExp][] = [
      [{ name: 'Bad_Name', command: ['true'] }, 400, /body\.name/],
      [{ name: '-leading', command: ['true'] }, 400, /body\.name/],
      [{ name: 'a'.repeat(64), command: ['true'] }, 400, /body\.name/],
      [{ name: 'ok', command: ['true'], surprise: 1 }, 400, /unknown field "surprise"/],
      [{ name: 'ok' }, 400, /exactly one of "command", "shell" or "source"/],
      [{ name: 'ok', command: ['true'], shell: 'true' }, 400, /exactly one of/],
      [{ name: 'ok', command: [] }, 400, /body\.command/],
      [{ name: 'ok', command: ['true'], ports: [{ name: 'web' }, { name: 'web' }] }, 400, /used twice/],
      [{ name: 'ok', command: ['true'], ports: [{ name: 'Web-1' }] }, 400, /body\.ports/],
      [{ name: 'ok', command: ['true'], ports: [{ name: 'web', port: 0 }] }, 400, /body\.ports/],
      [{ name: 'ok', command: ['true'], ports: [{ name: 'web', port: 65536 }] }, 400, /body\.ports/],
      [{ name: 'ok', command: ['true'], ports: [{ name: 'web', host: 80 }] }, 400, /unknown field "host"/],
      [{ name: 'ok', command: ['true'], env: { 'BAD-KEY': 'x' } }, 400, /body\.env/],
      [{ name: 'ok', command: ['true'], restart: 'sometimes' }, 400, /body\.restart/],
      [{ name: 'ok', command: ['true'], stopSignal: 'SIGFOO' }, 400, /body\.stopSignal/],
      [{ name: 'ok', command: ['true'], limits: { memoryBytes: 1 } }, 400, /body\.limits\.memoryBytes/],
      [{ name: 'ok', command: ['true'], limits: { memoryBytes: 2 ** 50 } }, 400, /at most/],
      [{ name: 'ok', command: ['true'], process: 'web' }, 400, /only a source/],
      [{ name: 'ok', source: { url: 'file:///etc/passwd' } }, 400, /body\.source\.url/],
    ];
    for (const [spec, status, message] of bad) {
      const res = await api(server, alice, 'POST', '/api/v1/instances', spec);
      expect(res.status, JSON.stringify(spec)).toBe(status);
      expect(res.body.error.message, JSON.stringify(spec)).toMatch(message);
    }
    const raw = await fetch(`${server.url}/api/v1/instances`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' },
      body: '{"name": ',
    });
    expect(raw.status).toBe(400);
    expect(((await raw.json()) as { error: { code: string } }).error.code).toBe('bad_json');
    expect((await api(server, alice, 'POST', '/api/v1/instances/nope/signal', { signal: 'SIGNOPE' })).status).toBe(400);
  });

  it('answers 409 for a duplicate name, but the same name is fine for another user', async () => {
    await createInstance(server, alice, { name: 'dup', command: ['sleep', '1000'] });
    const again = await api(server, alice, 'POST', '/api/v1/instances', { name: 'dup', command: ['true'] });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('instance_exists');
    await createInstance(server, bob, { name: 'dup', command: ['sleep', '1000'] });
  });

  it('changes the spec with PATCH and signals a running instance', async () => {
    const inst = await createInstance(server, alice, { name: 'patchme', command: ['sleep', '1000'] });
    const patched = await api(server, alice, 'PATCH', `/api/v1/instances/${inst.id}`, { env: { A: '1' }, restart: 'never' });
    expect(patched.status).toBe(200);
    expect(patched.body.spec.env).toEqual({ A: '1' });
    expect((await api(server, alice, 'PATCH', `/api/v1/instances/${inst.id}`, { shell: 'true' })).status).toBe(400);
    const unknown = await api(server, alice, 'PATCH', `/api/v1/instances/${inst.id}`, { bogus: 1 });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.message).toMatch(/unknown field "bogus"/);
    expect((await api(server, alice, 'PATCH', `/api/v1/instances/${inst.id}`, { source: { url: 'http://x/a.tgz' } })).status).toBe(400);
    expect((await api(server, alice, 'PATCH', `/api/v1/instances/${inst.id}`, { name: 'dup' })).status).toBe(409);
    const sig = await api(server, alice, 'POST', `/api/v1/instances/${inst.id}/signal`, { signal: 'SIGKILL' });
    expect(sig.status).toBe(200);
    const { waitFor } = await import('./helpers.js');
    const dead = await waitFor(server, alice, inst.id, (i) => i.state === 'failed');
    expect(dead.exitSignal ?? dead.lastError).toMatch(/SIGKILL/);
    const notRunning = await api(server, alice, 'POST', `/api/v1/instances/${inst.id}/signal`, { signal: 'SIGTERM' });
    expect(notRunning.status).toBe(409);
    expect(notRunning.body.error.code).toBe('invalid_state');
  });
});
