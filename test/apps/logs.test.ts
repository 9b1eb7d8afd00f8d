/**
 * App-level logs: each copy's lines are tapped into the app's log, marked with the copy, so
 * the app's output outlives the copies a deploy replaces; GET /apps/{name}/logs serves it
 * (tail, search, download, follow) to the owner and admins only; corral notes each switch;
 * deleting the app deletes its log. Also: the app's URL is the proxy's address for it.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createUser, startTestServer, type TestServer } from '../helpers/server.js';
import { APPS_DOMAIN, deploy, waitApp, webApp } from './helpers.js';

let server: TestServer;
let alice: string;
let bob: string;

const booting = (tag: string) => webApp(tag, { procfile: `web: echo "booting ${tag}"; echo "${tag} warns" >&2; exec node server.js\n` });

beforeAll(async () => {
  server = await startTestServer({ proxy: { appsDomain: APPS_DOMAIN }, apps: { drainSeconds: 0 } });
  alice = await createUser(server, 'alice');
  bob = await createUser(server, 'bob');
}, 60_000);
afterAll(() => server?.stop());

type Line = { t: string; stream: string; source?: string; line: string };
async function lines(query = 'tail=1000&format=ndjson', token = alice): Promise<Line[]> {
  const res = await fetch(`${server.url}/api/v1/apps/shop/logs?${query}`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  return (await res.text()).split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

describe('app logs', () => {
  it("keep every copy's lines, marked with the copy, across a deploy that replaces the copies", async () => {
    const v1 = await deploy(server, alice, 'shop', booting('v1'));
    expect(v1.status, JSON.stringify(v1.body)).toBe(201);
    expect(v1.body.app.url).toBe(`http://shop--alice.${APPS_DOMAIN}:${new URL(server.url).port}/`);
    const firstCopy = v1.body.app.copies[0];
    const v2 = await deploy(server, alice, 'shop', booting('v2'));
    expect(v2.status, JSON.stringify(v2.body)).toBe(201);
    // v1's copy is gone (its instance deleted with its own log) …
    const app = await waitApp(server, alice, 'shop', (a) => a.switch === null && a.copies.length === 1);
    expect(app.copies[0].id).not.toBe(firstCopy.id);
    expect((await api(server, alice, 'GET', `/api/v1/instances/${firstCopy.id}`)).status).toBe(404);

    // … and its lines are still in the app's log, marked with the copy, next to v2's.
    await expect.poll(async () => (await lines()).some((l) => l.line === 'booting v2'), { timeout: 10_000 }).toBe(true);
    const all = await lines();
    const v1Boot = all.find((l) => l.line === 'booting v1')!;
    const v2Boot = all.find((l) => l.line === 'booting v2')!;
    expect(v1Boot).toMatchObject({ stream: 'stdout', source: 'web.1' });
    expect(v2Boot).toMatchObject({ stream: 'stdout', source: app.copies[0].instance.slice('shop.'.length) });
    expect(all.find((l) => l.line === 'v1 warns')).toMatchObject({ stream: 'stderr', source: 'web.1' });
    expect(all.some((l) => l.source === 'web.1' && /^listening on \d+$/.test(l.line))).toBe(true);
    // corral's notes: each switch, and the copies' own starts and stops.
    const notes = all.filter((l) => l.stream === 'corral').map((l) => l.line);
    expect(notes).toContain('v1 serves');
    expect(notes.some((n) => n.startsWith('v2: switching'))).toBe(true);
    expect(all.findIndex((l) => l.line === 'booting v1')).toBeLessThan(all.findIndex((l) => l.line === 'booting v2'));

    // Plain text marks the copy; a search and a download cover the whole kept log.
    const text = await (await fetch(`${server.url}/api/v1/apps/shop/logs?tail=1000`, { headers: { authorization: `Bearer ${alice}` } })).text();
    expect(text).toContain('[web.1] booting v1\n');
    expect((await lines('search=BOOTING&format=ndjson')).map((l) => l.line)).toEqual(['booting v1', 'booting v2']);
    const dl = await fetch(`${server.url}/api/v1/apps/shop/logs?download=true`, { headers: { authorization: `Bearer ${alice}` } });
    expect(dl.headers.get('content-disposition')).toBe('attachment; filename="shop.log"');
    expect(await dl.text()).toMatch(/Z stdout \[web\.1\] booting v1\n/);
  }, 90_000);

  it('follows the app: the lines of a copy started later arrive live', async () => {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), 40_000);
    const res = await fetch(`${server.url}/api/v1/apps/shop/logs?follow=true&tail=0&format=ndjson`, { headers: { authorization: `Bearer ${alice}` }, signal: ctl.signal });
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    const restarted = api(server, alice, 'POST', '/api/v1/apps/shop/restart');
    let buf = '';
    while (!buf.includes('"line":"booting v2"')) buf += (await reader.read()).value ?? '';
    ctl.abort();
    clearTimeout(timer);
    expect((await restarted).status).toBe(200);
    const boot = buf.split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((l: Line) => l.line === 'booting v2');
    expect(boot.source).toMatch(/^web\.1/);
  }, 60_000);

  it('is the owner’s and admins’ only; bad input is refused', async () => {
    expect((await fetch(`${server.url}/api/v1/apps/shop/logs`, { headers: { authorization: `Bearer ${bob}` } })).status).toBe(404);
    expect((await fetch(`${server.url}/api/v1/apps/alice:shop/logs`, { headers: { authorization: `Bearer ${bob}` } })).status).toBe(404);
    expect((await fetch(`${server.url}/api/v1/apps/shop/logs`)).status).toBe(401);
    const admin = await fetch(`${server.url}/api/v1/apps/alice:shop/logs?search=booting`, { headers: { authorization: `Bearer ${server.adminToken}` } });
    expect(admin.status).toBe(200);
    expect(await admin.text()).toContain('booting v1');
    for (const q of ['download=true&follow=true', 'tail=-1', 'format=xml', 'search=']) {
      const res = await fetch(`${server.url}/api/v1/apps/shop/logs?${q}`, { headers: { authorization: `Bearer ${alice}` } });
      expect(res.status, q).toBe(400);
      expect((await res.json()).error.code).toBe('validation_failed');
    }
  });

  it('goes with the app when it is deleted', async () => {
    const { body } = await api(server, alice, 'GET', '/api/v1/apps/shop');
    const dir = path.join(server.data, 'apps', body.id, 'logs');
    expect(existsSync(path.join(dir, 'output.log'))).toBe(true);
    expect((await api(server, alice, 'DELETE', '/api/v1/apps/shop')).status).toBe(204);
    expect(existsSync(dir)).toBe(false);
    expect((await fetch(`${server.url}/api/v1/apps/shop/logs`, { headers: { authorization: `Bearer ${alice}` } })).status).toBe(404);
  }, 30_000);
});
