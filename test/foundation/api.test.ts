/** Each endpoint's happy path, and every kind of bad input the API refuses. */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, api, createUser, login, startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ bodyLimitBytes: 4096 });
});
afterAll(() => server.stop());

/** A raw request: for bodies that are not JSON.stringify-able or need their own content type. */
async function send(method: string, urlPath: string, body: string, contentType?: string, token = server.adminToken) {
  const res = await fetch(`${server.url}${urlPath}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(contentType && { 'content-type': contentType }) },
    body,
  });
  return { status: res.status, body: (await res.json()) as { error: { code: string; message: string } } };
}

describe('happy paths', () => {
  it('GET /api/v1 lists the entry points', async () => {
    const res = await api(server, undefined, 'GET', '/api/v1');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ name: 'corral', links: { users: '/api/v1/users', tokens: '/api/v1/tokens', openapi: '/api/v1/openapi.json' } });
  });

  it('serves health, readiness, the OpenAPI 3.1 document and its rendering', async () => {
    expect((await api(server, undefined, 'GET', '/healthz')).body).toEqual({ status: 'ok' });
    expect((await api(server, undefined, 'GET', '/readyz')).body).toEqual({ status: 'ready' });
    const doc = await api(server, undefined, 'GET', '/api/v1/openapi.json');
    expect(doc.body.openapi).toBe('3.1.0');
    expect(Object.keys(doc.body.paths)).toEqual(expect.arrayContaining(['/api/v1/users', '/api/v1/tokens', '/api/v1/login', '/api/v1/me']));
    const docs = await fetch(`${server.url}/api/v1/docs/`);
    expect(docs.status).toBe(200);
    expect(await docs.text()).toMatch(/swagger/i);
  });

  it('GET /api/v1/me says who a token speaks for', async () => {
    const res = await api(server, server.adminToken, 'GET', '/api/v1/me');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ user: { name: 'admin', role: 'admin' }, via: 'token' });
    expect(res.body.scopes).toContain('admin:write');
  });

  it('creates, shows, lists, updates and deletes users', async () => {
    const created = await api(server, server.adminToken, 'POST', '/api/v1/users', { name: 'carol', password: 'carol-password', credits: 5 });
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe('/api/v1/users/carol');
    expect(created.body).toMatchObject({ name: 'carol', role: 'user', credits: 5 });
    expect(created.body).not.toHaveProperty('passwordHash');
    expect((await api(server, server.adminToken, 'GET', '/api/v1/users/carol')).body.name).toBe('carol');
    const list = await api(server, server.adminToken, 'GET', '/api/v1/users');
    expect(list.body.users.map((u: { name: string }) => u.name)).toEqual(expect.arrayContaining(['admin', 'carol']));
    const promoted = await api(server, server.adminToken, 'PATCH', '/api/v1/users/carol', { role: 'admin' });
    expect(promoted.body.role).toBe('admin');
    const reset = await api(server, server.adminToken, 'PATCH', '/api/v1/users/carol', { password: 'carol-new-password' });
    expect(reset.status).toBe(200);
    await login(server.url, 'carol', 'carol-new-password');
    expect((await api(server, server.adminToken, 'DELETE', '/api/v1/users/carol')).status).toBe(204);
    const gone = await api(server, server.adminToken, 'GET', '/api/v1/users/carol');
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe('user_not_found');
  });

  it('lets a user change their own password with the current one', async () => {
    const token = await createUser(server, 'dave');
    const wrong = await api(server, token, 'PUT', '/api/v1/me/password', { current: 'not-it-at-all', password: 'dave-new-password' });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe('bad_credentials');
    const ok = await api(server, token, 'PUT', '/api/v1/me/password', { current: 'dave-password', password: 'dave-new-password' });
    expect(ok.status).toBe(204);
    await expect(login(server.url, 'dave', 'dave-password')).rejects.toThrow(/401/);
    await login(server.url, 'dave', 'dave-new-password');
  });

  it('creates, lists and revokes tokens', async () => {
    const created = await api(server, server.adminToken, 'POST', '/api/v1/tokens', { name: 'ci', scopes: ['jobs:write'], ttlSeconds: 3600 });
    expect(created.status).toBe(201);
    expect(created.body.info).toMatchObject({ name: 'ci', user: 'admin', scopes: ['jobs:write'], revokedAt: null });
    const expires = Date.parse(created.body.info.expiresAt) - Date.now();
    expect(expires).toBeGreaterThan(3500_000);
    expect(expires).toBeLessThan(3700_000);
    const list = await api(server, server.adminToken, 'GET', '/api/v1/tokens');
    expect(list.body.tokens.map((t: { name: string }) => t.name)).toContain('ci');
    const revoked = await api(server, server.adminToken, 'DELETE', `/api/v1/tokens/${created.body.info.id}`);
    expect(revoked.status).toBe(200);
    expect(revoked.body.revokedAt).not.toBeNull();
  });

  it('refuses to delete or demote the last admin', async () => {
    const del = await api(server, server.adminToken, 'DELETE', '/api/v1/users/admin');
    expect(del.status).toBe(409);
    expect(del.body.error.code).toBe('last_admin');
    const demote = await api(server, server.adminToken, 'PATCH', '/api/v1/users/admin', { role: 'user' });
    expect(demote.status).toBe(409);
  });
});

describe('bad input', () => {
  it('answers 400 bad_json to a body that is not JSON', async () => {
    const res = await send('POST', '/api/v1/users', '{"name": "x",', 'application/json');
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('bad_json');
  });

  it('answers 400 naming an unknown field', async () => {
    const res = await api(server, server.adminToken, 'POST', '/api/v1/users', { name: 'erin', password: 'erin-password', admin: true });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'validation_failed' });
    expect(res.body.error.message).toContain('unknown field "admin"');
  });

  it('answers 400 naming a missing field', async () => {
    const res = await api(server, server.adminToken, 'POST', '/api/v1/users', { name: 'erin' });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain('missing field "password"');
  });

  it('answers 413 to a body over the limit', async () => {
    const res = await send('POST', '/api/v1/users', JSON.stringify({ name: 'big', password: 'x'.repeat(8000) }), 'application/json');
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('body_too_large');
  });

  it('answers 415 to a content type it does not take', async () => {
    const res = await send('POST', '/api/v1/users', '<user name="x"/>', 'application/xml');
    expect(res.status).toBe(415);
    expect(res.body.error.code).toBe('unsupported_media_type');
  });

  it.each(['Bob', 'has space', 'a'.repeat(65), '', 'semi;colon', 'ünï'])('refuses the user name %j', async (name) => {
    const res = await api(server, server.adminToken, 'POST', '/api/v1/users', { name, password: 'long-enough-password' });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('validation_failed');
    expect(res.body.error.message).toMatch(/name/);
  });

  it('refuses a bad user name in a path', async () => {
    const res = await api(server, server.adminToken, 'GET', '/api/v1/users/NOT..ok%20');
    expect(res.status).toBe(400);
  });

  it('answers 409 to a duplicate user', async () => {
    await api(server, server.adminToken, 'POST', '/api/v1/users', { name: 'frank', password: 'frank-password' });
    const again = await api(server, server.adminToken, 'POST', '/api/v1/users', { name: 'frank', password: 'other-password' });
    expect(again.status).toBe(409);
    expect(again.body.error).toEqual({ code: 'user_exists', message: 'a user named "frank" already exists' });
  });

  it('answers 409 to a duplicate token name', async () => {
    await api(server, server.adminToken, 'POST', '/api/v1/tokens', { name: 'twice' });
    const again = await api(server, server.adminToken, 'POST', '/api/v1/tokens', { name: 'twice' });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('token_exists');
  });

  it('answers 401 to a wrong password and to an unknown user, with the same message', async () => {
    const wrong = await api(server, undefined, 'POST', '/api/v1/login', { name: 'admin', password: 'wrong-password' });
    const unknown = await api(server, undefined, 'POST', '/api/v1/login', { name: 'nobody', password: ADMIN_PASSWORD });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(unknown.body).toEqual(wrong.body);
  });

  it('answers 401 without credentials and 404 with the JSON error shape for unknown routes', async () => {
    const anon = await api(server, undefined, 'GET', '/api/v1/users');
    expect(anon.status).toBe(401);
    expect(anon.body.error.code).toBe('unauthenticated');
    const missing = await api(server, server.adminToken, 'GET', '/api/v1/nowhere?token=secret');
    expect(missing.status).toBe(404);
    expect(missing.body.error).toEqual({ code: 'not_found', message: 'no route for GET /api/v1/nowhere' });
  });

  it('answers an over-long path part (414) and a bad % escape (400) with the same error shape', async () => {
    const long = await api(server, server.adminToken, 'GET', `/api/v1/instances/${'a'.repeat(150)}`);
    expect([long.status, long.body.error?.code]).toEqual([414, 'uri_too_long']);
    const escape = await api(server, server.adminToken, 'GET', '/api/v1/instances/%zz');
    expect([escape.status, escape.body.error?.code]).toEqual([400, 'bad_request']);
  });

  it('answers 400 to a malformed token id', async () => {
    const res = await api(server, server.adminToken, 'DELETE', '/api/v1/tokens/not-a-uuid');
    expect(res.status).toBe(400);
  });

  it('answers requests Node cannot parse with the same error shape', async () => {
    const rawReply = (request: string) =>
      new Promise<string>((resolve) => {
        const { port } = new URL(server.url);
        const socket = connect(Number(port), '127.0.0.1', () => socket.write(request));
        let reply = '';
        socket.on('data', (d: Buffer) => (reply += d.toString()));
        socket.on('close', () => resolve(reply));
        socket.on('error', () => resolve(reply));
      });
    const framing = await rawReply('POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n');
    expect(framing).toMatch(/^HTTP\/1\.1 400 /);
    expect(JSON.parse(framing.split('\r\n\r\n')[1]!)).toMatchObject({ error: { code: 'bad_request' } });
    const huge = await rawReply(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(huge).toMatch(/^HTTP\/1\.1 431 /);
    expect(JSON.parse(huge.split('\r\n\r\n')[1]!)).toMatchObject({ error: { code: 'headers_too_large' } });
  });
});
