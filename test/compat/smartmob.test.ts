/**
 * smartmob-agent's REST walk-through, as its old clients ran it: plain HTTP with JSON
 * bodies sent without a JSON content type, links followed from the index, the attach
 * WebSocket with the `ws` package. Then the refusals: bad bodies, unknown slugs, source
 * failures in the old state names, and auth.
 */
import { randomBytes } from 'node:crypto';
import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Agent, request } from 'undici';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer } from '../../src/server.js';
import { configFromFlags } from '../../src/cli/server-config.js';
import { loadConfig } from '../../src/core/config.js';
import { createUser, startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import { processesMatching } from '../instances/helpers.js';
import { refusedHandshake } from '../relay/ws-client.js';
import { startFileServer, type FileServer } from '../sources/helpers/file-server.js';
import { compatConfig, eventually, oldClient, openWebSocket, procfileApp, restartServer, startCompatServer } from './helpers.js';

const marker = `smartmob-marker-${randomBytes(4).toString('hex')}`;
const app = procfileApp({
  Procfile: `web: env GREETING=hello sh run.sh ${marker}\ncrash: echo "crashing $FROM_REQUEST"; exit 3\n`,
  'run.sh': 'i=0; while true; do echo "line $i $GREETING $FROM_REQUEST"; echo "err $i" >&2; i=$((i+1)); sleep 0.2; done\n',
});
const noProcfile = procfileApp({ 'README': 'nothing to run\n' });

describe('smartmob-agent adapter', () => {
  let server: TestServer;
  let files: FileServer;
  let root: string;
  let auth: Record<string, string>;
  beforeAll(async () => {
    files = await startFileServer('127.0.0.1', {
      '/app.tar.gz': { headers: { 'content-type': 'application/x-gtar' }, body: app },
      '/empty.tar.gz': { headers: { 'content-type': 'application/octet-stream' }, body: noProcfile },
    });
    server = await startCompatServer({ smartmobAgent: {} });
    root = server.compat.smartmobAgent!;
    auth = { authorization: `Bearer ${server.adminToken}` };
  });
  afterAll(async () => {
    await Promise.all([server?.stop(), files?.close()]);
  });

  const create = (body: Record<string, unknown>, headers: Record<string, string> = auth) =>
    oldClient('POST', `${root}/create-process`, { body: JSON.stringify(body), headers });
  const status = (url: string) => oldClient('GET', url, { headers: auth });

  it('walks through index, create, list, status, attach and delete', async () => {
    const index = await oldClient('GET', root, { headers: auth });
    expect(index.status).toBe(200);
    expect(index.body).toEqual({ list: `${root}/list-processes`, create: `${root}/create-process` });

    const empty = await oldClient('GET', index.body.list, { headers: auth });
    expect(empty.body).toEqual({ processes: [] });

    // aiohttp's client.post(url, data=json.dumps(...)) sends no JSON content type.
    const created = await oldClient('POST', index.body.create, {
      headers: { ...auth, 'content-type': 'text/plain; charset=utf-8' },
      body: JSON.stringify({ app: 'myapp', source_url: `${files.url}/app.tar.gz`, process_type: 'web', node: 'web.0', env: { FROM_REQUEST: 'from-env' } }),
    });
    expect(created.status).toBe(201);
    const ws = root.replace(/^http/, 'ws');
    expect(created.body).toMatchObject({
      app: 'myapp',
      node: 'web.0',
      slug: 'myapp.web.0',
      attach: `${ws}/attach-console/myapp.web.0`,
      details: `${root}/process-status/myapp.web.0`,
      status: `${root}/process-status/myapp.web.0`,
      delete: `${root}/delete-process/myapp.web.0`,
    });
    expect(created.headers.location).toBe(created.body.details);
    expect(['pending', 'downloading', 'unpacking', 'processing']).toContain(created.body.state);

    const running = await eventually(() => status(created.body.status), (r) => r.body.corral?.state === 'running');
    expect(running.body.state).toBe('processing');

    const listing = await oldClient('GET', index.body.list, { headers: auth });
    expect(listing.body.processes.map((p: { slug: string }) => p.slug)).toEqual(['myapp.web.0']);

    // One text frame per line, stdout and stderr, with the request's env and the Procfile's.
    const stream = await openWebSocket(created.body.attach, auth);
    const line = await stream.until((t) => t.startsWith('line '));
    expect(line).toMatch(/^line \d+ hello from-env$/);
    await stream.until((t) => /^err \d+$/.test(t));
    expect(stream.frames.every((f) => !f.binary && !f.text.includes('\n'))).toBe(true);
    expect(await processesMatching(marker)).not.toEqual([]);

    const closed = new Promise<number>((resolve) => stream.socket.once('close', (code) => resolve(code)));
    const deleted = await oldClient('POST', created.body.delete, { headers: auth, body: JSON.stringify({}) });
    expect(deleted.status).toBe(200);
    expect(deleted.body).toEqual({});
    expect(await closed).toBe(1000);
    expect((await status(created.body.status)).status).toBe(404);
    expect((await oldClient('GET', index.body.list, { headers: auth })).body).toEqual({ processes: [] });
    await eventually(() => processesMatching(marker), (pids) => pids.length === 0, 10_000);
  });

  it('restarts a process that exits until it is deleted, staying "processing"', async () => {
    const created = await create({ app: 'crashy', node: 'crash.0', process_type: 'crash', source_url: `${files.url}/app.tar.gz`, env: { FROM_REQUEST: 'x' } });
    expect(created.status).toBe(201);
    const restarted = await eventually(() => status(created.body.status), (r) => r.body.corral.restartCount >= 2);
    expect(restarted.body.state).toBe('processing');
    const deleted = await oldClient('POST', created.body.delete, { headers: auth });
    expect(deleted.status).toBe(200);
  });

  it('echoes X-Request-Id, or sends a new uuid4', async () => {
    const mine = await oldClient('GET', `${root}/list-processes`, { headers: { ...auth, 'x-request-id': 'req-42' } });
    expect(mine.headers['x-request-id']).toBe('req-42');
    const fresh = await oldClient('GET', `${root}/list-processes`, { headers: auth });
    expect(fresh.headers['x-request-id']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const refused = await create({}, { ...auth, 'x-request-id': 'req-43' });
    expect(refused.status).toBe(400);
    expect(refused.headers['x-request-id']).toBe('req-43');
    const nowhere = await oldClient('GET', `${root}/no-such-thing`, { headers: { ...auth, 'x-request-id': 'req-44' } });
    expect(nowhere.status).toBe(404);
    expect(nowhere.headers['x-request-id']).toBe('req-44');
    expect((await oldClient('GET', `${root}/list-processes`, { headers: { ...auth, 'x-request-id': 'bad id' } })).headers['x-request-id']).not.toBe('bad id');

    const created = await create(
      { app: 'ids', node: 'crash.0', process_type: 'crash', source_url: `${files.url}/app.tar.gz` },
      { ...auth, 'x-request-id': 'req-45' },
    );
    const upgraded = new Promise<string | undefined>((resolve) => {
      const socket = new WebSocket(created.body.attach, { headers: { ...auth, 'x-request-id': 'req-46' } });
      socket.once('upgrade', (res) => resolve(res.headers['x-request-id'] as string | undefined));
      socket.once('open', () => socket.close());
    });
    expect(await upgraded).toBe('req-46');
    expect((await oldClient('POST', created.body.delete, { headers: auth })).status).toBe(200);
  });

  it('refuses bad bodies: missing or unknown keys, bad JSON, bad names', async () => {
    const ok = { app: 'a', node: 'web.0', process_type: 'web', source_url: `${files.url}/app.tar.gz` };
    const missing = await create({ app: 'a', node: 'web.0', process_type: 'web' });
    expect(missing.status).toBe(400);
    expect(missing.body.error.message).toContain('source_url');
    const unknown = await create({ ...ok, colour: 'blue' });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.message).toContain('colour');
    const badJson = await oldClient('POST', `${root}/create-process`, { headers: auth, body: '{"app": ' });
    expect(badJson.status).toBe(400);
    expect(badJson.body.error.code).toBe('bad_json');
    expect((await create({ ...ok, app: 'a/b' })).status).toBe(400);
    expect((await create({ ...ok, source_url: 'file:///etc/passwd' })).status).toBe(400);
    expect((await create({ ...ok, env: { 'NOT-A-NAME': 'x' } })).status).toBe(400);
    const badDelete = await oldClient('POST', `${root}/delete-process/a.web.0`, { headers: auth, body: '{"force": true}' });
    expect(badDelete.status).toBe(400);
  });

  it('answers 409 for a duplicate slug and 404 for unknown ones, also before the attach handshake', async () => {
    const body = { app: 'dup', node: 'crash.0', process_type: 'crash', source_url: `${files.url}/app.tar.gz` };
    const first = await create(body);
    expect(first.status).toBe(201);
    const second = await create(body);
    expect(second.status).toBe(409);
    expect((await oldClient('POST', first.body.delete, { headers: auth })).status).toBe(200);

    expect((await status(`${root}/process-status/nope.web.0`)).status).toBe(404);
    expect((await oldClient('POST', `${root}/delete-process/nope.web.0`, { headers: auth })).status).toBe(404);
    await expect(openWebSocket(`${root.replace(/^http/, 'ws')}/attach-console/nope.web.0`, auth)).rejects.toMatchObject({ status: 404 });
    // aiohttp pools connections: a refused handshake must say the connection ends, so its next
    // request goes out on a fresh one instead of failing with a reset.
    expect(await refusedHandshake(`${root}/attach-console/nope.web.0`, root, auth)).toEqual({
      status: 404,
      connection: 'close',
      followUpStatus: 401,
    });
  });

  it('reports source failures with the old state names', async () => {
    const cases = [
      { node: 'nf.0', source_url: `${files.url}/missing.tar.gz`, process_type: 'web', state: 'download failure' },
      { node: 'np.0', source_url: `${files.url}/empty.tar.gz`, process_type: 'web', state: 'no procfile' },
      { node: 'ut.0', source_url: `${files.url}/app.tar.gz`, process_type: 'worker', state: 'unknown process type' },
    ];
    for (const c of cases) {
      const created = await create({ app: 'failing', node: c.node, process_type: c.process_type, source_url: c.source_url });
      expect(created.status).toBe(201);
      const settled = await eventually(() => status(created.body.status), (r) => r.body.corral.state === 'failed');
      expect(settled.body.state).toBe(c.state);
      expect((await oldClient('POST', created.body.delete, { headers: auth })).status).toBe(200);
    }
  });

  it('follows links that carry the token of a root URL with ?token=', async () => {
    const token = encodeURIComponent(server.adminToken);
    const index = await oldClient('GET', `${root}/?token=${token}`);
    expect(index.status).toBe(200);
    expect(index.body.create).toBe(`${root}/create-process?token=${token}`);
    const created = await oldClient('POST', index.body.create, {
      body: JSON.stringify({ app: 'linked', node: 'crash.0', process_type: 'crash', source_url: `${files.url}/app.tar.gz` }),
    });
    expect(created.status).toBe(201);
    expect(created.body.attach).toBe(`${root.replace(/^http/, 'ws')}/attach-console/linked.crash.0?token=${token}`);
    expect((await oldClient('GET', created.body.status)).status).toBe(200);
    const stream = await openWebSocket(created.body.attach);
    await stream.close();
    expect((await oldClient('POST', created.body.delete)).status).toBe(200);
  });

  it('needs a token, and keeps users apart', async () => {
    const anonymous = await oldClient('GET', `${root}/list-processes`);
    expect(anonymous.status).toBe(401);
    expect((await create({ app: 'x', node: 'web.0', process_type: 'web', source_url: `${files.url}/app.tar.gz` }, {})).status).toBe(401);

    const created = await create({ app: 'private', node: 'crash.0', process_type: 'crash', source_url: `${files.url}/app.tar.gz` });
    expect(created.status).toBe(201);
    const bob = { authorization: `Bearer ${await createUser(server, 'bob')}` };
    expect((await oldClient('GET', `${root}/list-processes`, { headers: bob })).body).toEqual({ processes: [] });
    expect((await oldClient('GET', created.body.status, { headers: bob })).status).toBe(404);
    expect((await oldClient('POST', created.body.delete, { headers: bob })).status).toBe(404);
    await expect(openWebSocket(created.body.attach, bob)).rejects.toMatchObject({ status: 404 });
    expect((await oldClient('POST', created.body.delete, { headers: auth })).status).toBe(200);
  });
});

describe('smartmob-agent adapter with auth off', () => {
  it('serves token-less clients as the configured user and keeps its registry across a restart', async () => {
    const files = await startFileServer('127.0.0.1', { '/app.tar.gz': { headers: { 'content-type': 'application/gzip' }, body: app } });
    const data = await tempDir();
    const socket = path.join(data, 'manager.sock');
    const config = compatConfig({ smartmobAgent: { auth: false, runAs: 'admin' }, pixelatedManager: { socket, auth: false } }, {}, { data });
    const first = await startTestServer(config);
    let open: { compat: Record<string, string>; close(): Promise<void> } = first;
    try {
      const created = await oldClient('POST', `${open.compat.smartmobAgent}/create-process`, {
        body: JSON.stringify({ app: 'kept', node: 'crash.0', process_type: 'crash', source_url: `${files.url}/app.tar.gz` }),
      });
      expect(created.status).toBe(201);
      // The manager on a unix socket only its owner may use, without a token.
      expect(open.compat.pixelatedManager).toBe(`unix:${socket}`);
      expect((await stat(socket)).mode & 0o777).toBe(0o600);
      const agents = await request('http://localhost/agents', { dispatcher: new Agent({ connect: { socketPath: socket } }) });
      expect(agents.statusCode).toBe(200);
      expect(((await agents.body.json()) as { agents: { name: string }[] }).agents.map((a) => a.name)).toEqual(['admin']);

      await first.stop({ keepData: true });
      open = await restartServer(config);
      const listed = await oldClient('GET', `${open.compat.smartmobAgent}/list-processes`);
      expect(listed.body.processes.map((p: { slug: string }) => p.slug)).toEqual(['kept.crash.0']);
      const restarted = await eventually(() => oldClient('GET', listed.body.processes[0].status), (r) => r.body.corral.restartCount >= 1);
      expect(restarted.body.state).toBe('processing');
      expect((await oldClient('POST', listed.body.processes[0].delete)).status).toBe(200);
    } finally {
      await Promise.all([open.close(), files.close()]);
      await rm(data, { recursive: true, force: true });
    }
  });

  it('is refused anywhere but on loopback or a unix socket', async () => {
    const data = await tempDir();
    const exposed = loadConfig({
      env: {},
      flags: { port: 0, logLevel: 'silent', data, compat: { smartmobAgent: { enabled: true, host: '0.0.0.0', auth: false } } },
    });
    await expect(startServer(exposed)).rejects.toMatchObject({ code: 'config_invalid' });
    await rm(data, { recursive: true, force: true });
  });
});

describe('corral serve --compat', () => {
  it('turns every adapter on, each on its own default port on 127.0.0.1', () => {
    const off = configFromFlags({});
    expect(Object.values(off.compat).filter((c) => 'enabled' in c && c.enabled)).toEqual([]);
    const on = configFromFlags({ compat: true });
    const { pixelatedAgent: _, ...adapters } = on.compat;
    expect(Object.fromEntries(Object.entries(adapters).map(([name, c]) => [name, [c.enabled, c.host, c.port, c.auth]]))).toEqual({
      smartmobAgent: [true, '127.0.0.1', 8081, true],
      golemHerder: [true, '127.0.0.1', 8082, true],
      pixelatedProxy: [true, '127.0.0.1', 8083, true],
      pixelatedManager: [true, '127.0.0.1', 8084, true],
    });
  });
});
