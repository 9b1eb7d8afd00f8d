/** The child server's stdout: one JSON line per request, and no password, token or cookie in it. */
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, api, createToken, login, spawnServer, tempDir, type ChildServer } from '../helpers/server.js';

let data: string;
let child: ChildServer;
beforeAll(async () => {
  data = await tempDir('corral-logging-');
  child = await spawnServer(data);
});
afterAll(async () => {
  await child.kill();
  await rm(data, { recursive: true, force: true });
});

const requestLines = () =>
  child
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.msg === 'request');

async function waitForRequestLines(n: number): Promise<void> {
  for (let i = 0; i < 100 && requestLines().length < n; i++) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 200)); // and no more arrive
}

describe('request logs', () => {
  it('writes exactly one line per request, with no secret in any line', async () => {
    const before = requestLines().length;
    const session = await login(child.url, 'admin', ADMIN_PASSWORD); // 1
    const token = await createToken(child.url, session, 'logged'); // 2
    const form = await fetch(`${child.url}/api/v1/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ name: 'admin', password: ADMIN_PASSWORD }),
    }); // 3
    expect(form.status).toBe(200);
    const wrong = await api(child, undefined, 'POST', '/api/v1/login', { name: 'admin', password: 'wrong-secret-guess' }); // 4
    expect(wrong.status).toBe(401);
    expect((await api(child, token, 'GET', '/api/v1/me')).status).toBe(200); // 5
    expect((await api(child, undefined, 'GET', `/api/v1/me?token=${token}&x=1`)).status).toBe(200); // 6
    expect((await fetch(`${child.url}/api/v1/me`, { headers: { cookie: session.cookie } })).status).toBe(200); // 7
    const bad = await api(child, `${token.slice(0, -4)}AAAA`, 'GET', '/api/v1/me'); // 8
    expect(bad.status).toBe(401);
    expect((await api(child, token, 'POST', '/api/v1/users', { name: 'logme', password: 'user-secret-password' })).status).toBe(201); // 9

    await waitForRequestLines(before + 9);
    const lines = requestLines().slice(before);
    expect(lines.map((l) => `${String(l.method)} ${String(l.status)}`)).toEqual([
      'POST 200', 'POST 201', 'POST 200', 'POST 401', 'GET 200', 'GET 200', 'GET 200', 'GET 401', 'POST 201',
    ]);
    expect(lines[5]!.url).toBe('/api/v1/me?token=[redacted]&x=1');
    expect(lines[4]!.user).toBe('admin');

    const out = child.output();
    const cookieValue = session.cookie.split('=')[1]!;
    for (const secret of [ADMIN_PASSWORD, 'wrong-secret-guess', 'user-secret-password', token, token.split('.')[2]!, cookieValue, session.csrfToken]) {
      expect(out).not.toContain(secret);
    }
    expect(out).not.toContain('FSTDEP023');
  });
});
