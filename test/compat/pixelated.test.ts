/**
 * pixelated-dispatcher as its old clients used it: the manager's REST API with plain JSON
 * requests (add, list, start, runtime, authenticate, memory, reset, stop, delete), and the
 * proxy as a browser sees it: login form → the agent's page (HTTP and WebSocket, through
 * corral's proxy) → logout. Then the refusals: bad names and states, auth, foreign origins.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUser, type TestServer } from '../helpers/server.js';
import { eventually, oldClient, openWebSocket, startCompatServer } from './helpers.js';

// The agent: starts listening only after a while (login must wait for it), answers with
// the path, the user corral says it serves, whether corral's cookie leaked through and the
// credentials login wrote to its stdin; a WebSocket gets one text frame.
const AGENT = `
const http = require('http'), crypto = require('crypto');
let stdin = '';
process.stdin.on('data', (d) => (stdin += d));
const server = http.createServer((q, s) => {
  s.writeHead(200, { 'content-type': 'text/html' });
  const seen = { url: q.url, user: q.headers['x-corral-user'], cookie: q.headers.cookie || '', stdin };
  s.end('<h1>pixelated agent</h1>' + JSON.stringify(seen));
});
server.on('upgrade', (q, socket) => {
  const accept = crypto.createHash('sha1').update(q.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  socket.write('HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Accept: ' + accept + '\\r\\n\\r\\n');
  const text = Buffer.from('hello ' + q.headers['x-corral-user']);
  socket.write(Buffer.concat([Buffer.from([0x81, text.length]), text]));
  socket.on('error', () => {});
});
setTimeout(() => server.listen(process.env.PORT, '127.0.0.1'), 1000);
`;

const json = (body: unknown) => JSON.stringify(body);

describe('pixelated-dispatcher adapters', () => {
  let server: TestServer;
  let manager: string;
  let proxy: string;
  let admin: Record<string, string>;
  beforeAll(async () => {
    // The manager mounted under a prefix of the main listener, the proxy on its own port.
    server = await startCompatServer(
      { pixelatedManager: { prefix: '/pixelated-manager' }, pixelatedProxy: {} },
      { pixelatedAgent: { command: [process.execPath, '-e', AGENT], credentialsOnStdin: true } },
    );
    expect(server.compat.pixelatedManager).toBeUndefined();
    manager = `${server.url}/pixelated-manager`;
    proxy = server.compat.pixelatedProxy!;
    admin = { authorization: `Bearer ${server.adminToken}` };
  });
  afterAll(async () => {
    await server?.stop();
  });

  const call = (method: string, path: string, body?: unknown, headers = admin) =>
    oldClient(method, `${manager}${path}`, { headers, ...(body !== undefined && { body: json(body) }) });

  it('manages an agent through its life: add, list, start, runtime, authenticate, memory, reset, stop, delete', async () => {
    const added = await call('POST', '/agents', { name: 'alice', password: 'alice-password' });
    expect(added.status).toBe(201);
    expect(added.body).toEqual({ name: 'alice', uri: `${manager}/agents/alice`, state: 'stopped' });
    expect(added.headers.location).toBe(`${manager}/agents/alice`);

    const listed = await call('GET', '/agents');
    expect(listed.body.agents).toContainEqual({ name: 'alice', uri: `${manager}/agents/alice`, state: 'stopped' });
    expect((await call('GET', '/agents/alice')).body.state).toBe('stopped');
    expect((await call('GET', '/agents/alice/runtime')).body).toEqual({ state: 'stopped' });

    expect(await call('POST', '/agents/alice/authenticate', { password: 'alice-password' })).toMatchObject({ status: 200, body: {} });
    expect(await call('POST', '/agents/alice/authenticate', { password: 'wrong-password' })).toMatchObject({ status: 403, body: {} });

    expect(await call('PUT', '/agents/alice/state', { state: 'running' })).toMatchObject({ status: 200, body: { state: 'running' } });
    expect((await call('GET', '/agents/alice/state')).body).toEqual({ state: 'running' });
    expect((await call('PUT', '/agents/alice/state', { state: 'running' })).status).toBe(409);
    const runtime = await eventually(() => call('GET', '/agents/alice/runtime'), (r) => typeof r.body.port === 'number');
    expect(runtime.body.state).toBe('running');
    const page = await eventually(
      () => oldClient('GET', `http://127.0.0.1:${runtime.body.port}/`).catch(() => ({ status: 0 }) as { status: number }),
      (r) => r.status === 200,
    );
    expect(page.status).toBe(200);

    const memory = await call('GET', '/stats/memory_usage');
    expect(memory.status).toBe(200);
    expect(memory.body.agents.map((a: { name: string }) => a.name)).toEqual(['alice']);
    expect(memory.body.total_usage).toBe(memory.body.agents[0].memory_usage);
    expect(memory.body.average_usage).toBe(memory.body.total_usage);

    expect((await call('PUT', '/agents/alice/reset_data')).status).toBe(409);
    expect(await call('PUT', '/agents/alice/state', { state: 'stopped' })).toMatchObject({ status: 200, body: { state: 'stopped' } });
    expect((await call('PUT', '/agents/alice/state', { state: 'stopped' })).status).toBe(409);
    expect(await call('PUT', '/agents/alice/reset_data')).toMatchObject({ status: 200, body: { state: 'stopped' } });

    expect((await call('DELETE', '/agents/alice')).status).toBe(200);
    expect((await call('GET', '/agents/alice')).status).toBe(404);
  });

  it('refuses bad names, duplicates, unknown agents and states', async () => {
    const badName = await call('POST', '/agents', { name: 'Not Valid', password: 'long-enough' });
    expect([badName.status, badName.body.error.code]).toEqual([400, 'validation_failed']);
    expect((await call('POST', '/agents', { name: 'carl' })).status).toBe(400);
    expect((await call('POST', '/agents', { name: 'carl', password: 'long-enough', extra: 1 })).status).toBe(400);
    expect((await oldClient('POST', `${manager}/agents`, { headers: admin, body: '{"name":' })).body.error.code).toBe('bad_json');
    expect((await call('POST', '/agents', { name: 'carl', password: 'long-enough' })).status).toBe(201);
    expect((await call('POST', '/agents', { name: 'carl', password: 'long-enough' })).status).toBe(409);
    expect((await call('PUT', '/agents/carl/state', { state: 'paused' })).status).toBe(400);
    expect((await call('GET', '/agents/nobody')).status).toBe(404);
    // The login form: a missing or unknown field is a JSON 400, before any password check.
    const loginForm = (body: string) =>
      oldClient('POST', `${proxy}/auth/login`, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
    for (const body of ['username=carl', 'username=carl&password=long-enough&colour=red']) {
      const refused = await loginForm(body);
      expect([refused.status, refused.body?.error?.code]).toEqual([400, 'validation_failed']);
    }
    expect((await call('GET', '/agents/nobody/runtime')).status).toBe(404);
    expect((await call('PUT', '/agents/nobody/state', { state: 'running' })).status).toBe(404);
    expect((await call('POST', '/agents/nobody/authenticate', { password: 'whatever1' })).status).toBe(404);
  });

  it('asks for an admin token (the old manager asked nothing)', async () => {
    expect((await call('GET', '/agents', undefined, {})).status).toBe(401);
    const user = { authorization: `Bearer ${await createUser(server, 'dora')}` };
    expect((await call('GET', '/agents', undefined, user)).status).toBe(403);
    expect((await call('POST', '/agents', { name: 'eve', password: 'long-enough' }, user)).status).toBe(403);
  });

  it('logs a browser in, starts its agent, forwards HTTP and WebSocket to it, and logs it out', async () => {
    expect((await call('POST', '/agents', { name: 'bob', password: 'bob-password' })).status).toBe(201);

    const anonymous = await oldClient('GET', `${proxy}/inbox?folder=1`);
    expect(anonymous.status).toBe(302);
    expect(anonymous.headers.location).toBe(`/auth/login?next=${encodeURIComponent('/inbox?folder=1')}`);
    expect((await oldClient('GET', `${proxy}/inbox`, { headers: { 'x-requested-with': 'XMLHttpRequest' } })).status).toBe(401);
    await expect(openWebSocket(`${proxy.replace(/^http/, 'ws')}/socket`)).rejects.toMatchObject({ status: 401 });

    const form = await oldClient('GET', `${proxy}${anonymous.headers.location}`);
    expect(form.status).toBe(200);
    expect(form.text).toContain('name="username"');
    expect(form.text).toContain('name="password"');
    expect(form.headers['cache-control']).toBe('no-store');
    expect(form.headers['x-frame-options']).toBe('SAMEORIGIN');
    expect(form.headers['x-content-type-options']).toBe('nosniff');

    const post = (fields: Record<string, string>, headers: Record<string, string> = {}) =>
      oldClient('POST', `${proxy}/auth/login`, {
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body: new URLSearchParams(fields).toString(),
      });
    const wrong = await post({ username: 'bob', password: 'not-his-password', next: '/inbox' });
    expect(wrong.text).toContain('Invalid credentials');
    expect(wrong.headers['set-cookie']).toBeUndefined();
    expect((await post({ username: 'bob', password: 'bob-password' }, { origin: 'http://evil.example' })).status).toBe(403);

    // Login starts the stopped agent and answers only once it serves.
    const ok = await post({ username: 'bob', password: 'bob-password', next: '/inbox?folder=1' });
    expect(ok.status).toBe(302);
    expect(ok.headers.location).toBe('/inbox?folder=1');
    const cookie = String(ok.headers['set-cookie']).split(';')[0]!;
    const page = await oldClient('GET', `${proxy}/inbox?folder=1`, { headers: { cookie: `${cookie}; theme=dark` } });
    expect(page.status).toBe(200);
    expect(page.text).toContain('<h1>pixelated agent</h1>');
    const seen = JSON.parse(page.text.replace('<h1>pixelated agent</h1>', ''));
    expect(seen).toEqual({
      url: '/inbox?folder=1',
      user: 'bob',
      cookie: 'theme=dark',
      stdin: `${JSON.stringify({ user: 'bob', password: 'bob-password' })}\n`,
    });
    expect(page.headers['x-frame-options']).toBe('SAMEORIGIN');

    const socket = await openWebSocket(`${proxy.replace(/^http/, 'ws')}/socket`, { cookie });
    expect(await socket.until((t) => t.startsWith('hello'))).toBe('hello bob');
    const closed = new Promise<void>((resolve) => socket.socket.once('close', () => resolve()));

    // Stopped by the manager while logged in: the next page is the login form, which starts it again.
    expect(await call('PUT', '/agents/bob/state', { state: 'stopped' })).toMatchObject({ status: 200 });
    await closed;
    const stopped = await oldClient('GET', `${proxy}/inbox`, { headers: { cookie } });
    expect(stopped.status).toBe(302);
    expect(stopped.headers.location).toBe(`/auth/login?next=${encodeURIComponent('/inbox')}`);
    const again = await post({ username: 'bob', password: 'bob-password', next: '/inbox' });
    expect(again.status).toBe(302);
    const cookie2 = String(again.headers['set-cookie']).split(';')[0]!;
    expect((await oldClient('GET', `${proxy}/inbox`, { headers: { cookie: cookie2 } })).status).toBe(200);
    expect((await oldClient('GET', `${proxy}/inbox`, { headers: { cookie } })).status).toBe(200);

    const socket2 = await openWebSocket(`${proxy.replace(/^http/, 'ws')}/socket`, { cookie });
    const closed2 = new Promise<void>((resolve) => socket2.socket.once('close', () => resolve()));
    const out = await oldClient('GET', `${proxy}/auth/logout`, { headers: { cookie } });
    expect(out.status).toBe(302);
    expect(out.headers.location).toBe('/auth/login');
    await closed2;
    expect((await oldClient('GET', `${proxy}/inbox`, { headers: { cookie } })).status).toBe(302);
  });

  it('keeps `next` on this site, and starts one agent for two first logins at once', async () => {
    expect((await call('POST', '/agents', { name: 'fred', password: 'fred-password' })).status).toBe(201);
    const login = (next: string) =>
      oldClient('POST', `${proxy}/auth/login`, {
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ username: 'fred', password: 'fred-password', next }).toString(),
      });
    const [evil, fine] = await Promise.all([login('//evil.example/'), login('/mail')]);
    expect(evil.status).toBe(302);
    expect(evil.headers.location).toBe('/');
    expect(fine.status).toBe(302);
    expect(fine.headers.location).toBe('/mail');
    const instances = await oldClient('GET', `${server.url}/api/v1/instances`, { headers: admin });
    expect(instances.body.instances.filter((i: { owner: string }) => i.owner === 'fred').map((i: { name: string }) => i.name)).toEqual(['agent']);
  });
});

describe('pixelated-dispatcher login under corral\'s sign-in rules', () => {
  let server: TestServer;
  afterAll(async () => {
    await server?.stop();
  });

  it('holds auth.passkeys.require (this old form cannot use a passkey) and says why it refuses', async () => {
    server = await startCompatServer(
      { pixelatedManager: { prefix: '/pixelated-manager' }, pixelatedProxy: {} },
      { pixelatedAgent: { command: [process.execPath, '-e', AGENT] } },
      { auth: { passkeys: { requireGroups: ['mail'] } } },
    );
    const manager = `${server.url}/pixelated-manager`;
    const added = await oldClient('POST', `${manager}/agents`, { headers: { authorization: `Bearer ${server.adminToken}` }, body: json({ name: 'gail', password: 'gail-password' }) });
    expect(added.status).toBe(201);
    const groups = await oldClient('PUT', `${server.url}/api/v1/users/gail/groups`, { headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json' }, body: json({ groups: ['mail'] }) });
    expect(groups.status).toBe(200);
    const post = (password: string) =>
      oldClient('POST', `${server.compat.pixelatedProxy!}/auth/login`, {
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ username: 'gail', password }).toString(),
      });
    const refused = await post('gail-password');
    expect(refused.status).toBe(403);
    expect(refused.text).toContain('this account needs a passkey');
    expect(refused.headers['set-cookie']).toBeUndefined();
    // A wrong password still says no more than that.
    const wrong = await post('not-her-password');
    expect([wrong.status, wrong.text.includes('Invalid credentials')]).toEqual([401, true]);
  });
});
