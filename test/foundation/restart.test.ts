/** A child server: what survives a restart (and a crash), and a clean shutdown on a signal. */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ADMIN_PASSWORD, api, createToken, login, spawnServer, tempDir, type ChildServer } from '../helpers/server.js';

// Several child servers start in one test: allow for a busy machine.
vi.setConfig({ testTimeout: 120_000 });

let data: string;
let child: ChildServer | undefined;
beforeAll(async () => {
  data = await tempDir('corral-restart-');
});
afterAll(async () => {
  await child?.kill('SIGKILL');
  await rm(data, { recursive: true, force: true });
});

describe('persistence across restarts', () => {
  it('keeps users, tokens, revocations and sessions across a clean restart and a SIGKILL', async () => {
    child = await spawnServer(data);
    const adminSession = await login(child.url, 'admin', ADMIN_PASSWORD);
    const adminToken = await createToken(child.url, adminSession, 'kept');
    expect((await api(child, adminToken, 'POST', '/api/v1/users', { name: 'oscar', password: 'oscar-password' })).status).toBe(201);
    const doomed = await api(child, adminToken, 'POST', '/api/v1/tokens', { name: 'doomed' });
    expect((await api(child, adminToken, 'DELETE', `/api/v1/tokens/${doomed.body.info.id}`)).status).toBe(200);
    const oscar = await login(child.url, 'oscar', 'oscar-password');
    expect(await child.kill('SIGTERM')).toEqual({ code: 0, signal: null });

    child = await spawnServer(data);
    expect(child.output()).not.toContain('created the first admin');
    const me = await api(child, adminToken, 'GET', '/api/v1/me');
    expect(me.status).toBe(200);
    const revoked = await api(child, doomed.body.token as string, 'GET', '/api/v1/me');
    expect(revoked.status).toBe(401);
    expect(revoked.body.error.code).toBe('token_revoked');
    const users = await api(child, adminToken, 'GET', '/api/v1/users');
    expect(users.body.users.map((u: { name: string }) => u.name)).toEqual(['admin', 'oscar']);
    const bySession = await fetch(`${child.url}/api/v1/me`, { headers: { cookie: oscar.cookie } });
    expect(bySession.status).toBe(200);
    expect(((await bySession.json()) as { user: { name: string } }).user.name).toBe('oscar');

    // Written before it is acknowledged: a SIGKILL right after the reply loses nothing.
    expect((await api(child, adminToken, 'POST', '/api/v1/users', { name: 'peggy', password: 'peggy-password' })).status).toBe(201);
    expect((await child.kill('SIGKILL')).signal).toBe('SIGKILL');
    child = await spawnServer(data);
    await login(child.url, 'peggy', 'peggy-password');
    await child.kill('SIGTERM');
    child = undefined;
  });
});

/** Opens a raw connection and sends the first part of a request; returns a way to finish it. */
function startSlowRequest(url: string, body: string) {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  let reply = '';
  socket.on('data', (d: Buffer) => (reply += d.toString()));
  const done = new Promise<string>((resolve) => socket.on('close', () => resolve(reply)));
  const head =
    `POST /api/v1/login HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n`;
  const half = Math.floor(body.length / 2);
  const opened = new Promise<void>((resolve) => socket.once('connect', () => socket.write(head + body.slice(0, half), () => resolve())));
  return { opened, finish: () => socket.write(body.slice(half)), done };
}

function canConnect(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const s = connect(Number(port), hostname);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

describe('shutdown on a signal', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)('%s: stops accepting, finishes the request in flight, closes the database, exits 0', async (signal) => {
    child = await spawnServer(data);
    const slow = startSlowRequest(child.url, JSON.stringify({ name: 'admin', password: ADMIN_PASSWORD }));
    await slow.opened;
    await new Promise((r) => setTimeout(r, 200)); // the server has read the headers
    const exited = child.kill(signal);
    await new Promise((r) => setTimeout(r, 500));
    expect(await canConnect(child.url)).toBe(false);
    slow.finish();
    const reply = await slow.done;
    expect(reply, child.output()).toMatch(/^HTTP\/1\.1 200 /);
    expect(reply).toContain('"csrfToken"');
    expect(await exited).toEqual({ code: 0, signal: null });
    expect(child.output()).toContain('shutting down');
    // SQLite removes the WAL file when the last connection closes cleanly.
    expect(existsSync(path.join(data, 'corral.db-wal'))).toBe(false);
    child = undefined;
  });

  it('does not wait forever for a request that never completes', async () => {
    child = await spawnServer(data);
    const stuck = startSlowRequest(child.url, JSON.stringify({ name: 'admin', password: ADMIN_PASSWORD }));
    await stuck.opened;
    await new Promise((r) => setTimeout(r, 200));
    const started = Date.now();
    expect(await child.kill('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(Date.now() - started).toBeGreaterThan(5_000); // it did wait for the grace period
    expect(await stuck.done).toBe('');
    child = undefined;
  });
});
