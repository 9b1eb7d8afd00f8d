/**
 * golems and ad-hoc minions, as golem-herder's README has them, with auth off on loopback
 * (the old herder had none): a golem's control socket pairs with two ad-hoc minions and
 * frames go both ways, text and binary; then a real headless Chromium golem opens a local
 * page whose golem code connects back through the relay and answers a minion. The adapter is
 * mounted under /gh on the main listener here.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, api, login, type TestServer } from '../helpers/server.js';
import { connect, refusedHandshake, refusedWith, send, type Client } from '../relay/ws-client.js';
import { grant } from '../credits/helpers.js';
import { eventually } from './helpers.js';
import { startGolemServer } from './golem-helpers.js';

let server: TestServer;
let pages: Server;
let root: string;
let ws: string;

/** The document the golem opens: the bootstrap script, and golem code that answers minions. */
const page = (herder: string) => `<!doctype html><html><head><title>doc</title>
<script src="${herder}/golem/v1/"></script></head><body>
<script type="text/plain" class="golem">
  var h = window.golemHerder;
  var base = h.base.replace(/^http/, 'ws');
  var control = new WebSocket(base + '/golem/v1/connect/' + h.id);
  control.onmessage = function (m) {
    var e = JSON.parse(m.data);
    if (e.Event !== 'minion-connected') return;
    var link = new WebSocket(base + '/golem/v1/connect-to/' + h.id + '/' + e.ID);
    link.binaryType = 'arraybuffer';
    link.onmessage = function (f) {
      if (typeof f.data === 'string') link.send('golem of ' + h.id + ' heard ' + e.Type + ': ' + f.data);
      else link.send(new Uint8Array(f.data).reverse());
    };
  };
</script></body></html>`;

beforeAll(async () => {
  pages = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(page(root));
  });
  await new Promise<void>((r) => pages.listen(0, '127.0.0.1', r));
  const pagesUrl = `http://127.0.0.1:${(pages.address() as AddressInfo).port}`;
  // Mounted under a prefix of the main listener (the other test file uses its own listener).
  // A golem's Chromium must reach the document server and corral's relay, both on this
  // machine's loopback here: sandboxes have network namespaces of their own that never lead
  // to the host's loopback, so this server shares the host network (the unsafe opt-out that
  // docs/compat.md names for golems on a loopback-only install).
  server = await startGolemServer(
    { auth: false, prefix: '/gh', documentUrl: `${pagesUrl}/docs/{id}` },
    { drivers: { process: { hostNetwork: true } } },
  );
  root = `${server.url}/gh`;
  ws = root.replace(/^http/, 'ws');
});
afterAll(async () => {
  await server?.stop();
  await new Promise((r) => pages?.close(r));
});

/** A minion on document `id`, paired by `golem` (a control socket): returns both sides. */
async function pairMinion(golem: Client, id: string, type: string): Promise<{ minion: Client; link: Client; minionId: string }> {
  const minion = await connect(`${ws}/minion/v1/connect/${id}?type=${type}`);
  const hello = await golem.json();
  expect(hello).toEqual({ Event: 'minion-connected', ID: expect.any(String), Type: type });
  const link = await connect(`${ws}/golem/v1/connect-to/${id}/${hello.ID}`);
  expect(await minion.json()).toEqual({ Event: 'golem-connected' });
  return { minion, link, minionId: hello.ID };
}

describe('ad-hoc minions', () => {
  it('pair with a golem, two at once, and relay text and binary frames both ways', async () => {
    const golem = await connect(`${ws}/golem/v1/connect/doc-pair`);
    const a = await pairMinion(golem, 'doc-pair', 'python');
    const b = await pairMinion(golem, 'doc-pair', 'sensor');

    await send(a.minion, 'from a');
    await send(b.minion, Buffer.from([1, 2, 3]));
    expect(await a.link.next()).toMatchObject({ text: 'from a', binary: false });
    expect(await b.link.next()).toMatchObject({ binary: true, data: Buffer.from([1, 2, 3]) });
    await send(a.link, Buffer.from([255, 0]));
    await send(b.link, 'to b');
    expect(await a.minion.next()).toMatchObject({ binary: true, data: Buffer.from([255, 0]) });
    expect(await b.minion.next()).toMatchObject({ text: 'to b', binary: false });

    // A second golem for the same document is refused; so is a link to an unknown minion.
    expect(await refusedWith(`${ws}/golem/v1/connect/doc-pair`)).toBe(409);
    expect(await refusedWith(`${ws}/golem/v1/connect-to/doc-pair/00000000-0000-4000-8000-000000000000`)).toBe(404);
    expect(await refusedWith(`${ws}/golem/v1/connect-to/doc-pair/${a.minionId}`)).toBe(409);
    // …and each refusal ends its connection, so a pooling client's next request is unharmed.
    expect(await refusedHandshake(`${ws}/golem/v1/connect-to/doc-pair/not-issued`, `${root}/golem/v1/ls`)).toEqual({
      status: 404,
      connection: 'close',
      followUpStatus: 200,
    });

    a.link.ws.close();
    expect(await a.minion.json()).toEqual({ Event: 'golem-disconnected' });
    b.minion.ws.close();
    expect(await golem.json()).toEqual({ Event: 'minion-disconnected', ID: b.minionId });
    await b.link.closed;
    golem.ws.close();
    expect((await a.minion.closed).code).toBe(1001);
  });

  it('wait for the golem and keep what they send meanwhile', async () => {
    const minion = await connect(`${ws}/minion/v1/connect/doc-late?type=early`);
    await send(minion, 'said before the golem came');
    await send(minion, Buffer.from([7]));
    const golem = await connect(`${ws}/golem/v1/connect/doc-late`);
    const hello = await golem.json();
    expect(hello).toMatchObject({ Event: 'minion-connected', Type: 'early' });
    const link = await connect(`${ws}/golem/v1/connect-to/doc-late/${hello.ID}`);
    expect(await link.next()).toMatchObject({ text: 'said before the golem came', binary: false });
    expect(await link.next()).toMatchObject({ binary: true, data: Buffer.from([7]) });
    golem.ws.close();
    await minion.closed;
  });

  it('keep a document’s channel its first golem’s user’s: another token’s golem is refused after it leaves', async () => {
    const tokenFor = async (email: string) =>
      (await api(server, server.adminToken, 'POST', '/api/v1/golem-herder/tokens', { email, credits: 10 })).body.token as string;
    const [alice, bob] = [await tokenFor('alice@example.com'), await tokenFor('bob@example.com')];
    const golemOf = (token: string) => `${ws}/golem/v1/connect/doc-owned?token=${token}`;
    const first = await connect(golemOf(alice));
    first.ws.close();
    await first.closed;
    await eventually(() => Promise.resolve(server.corral.relay.list()), (l) => !l.some((c) => c.key === 'golem-herder/doc-owned'));
    expect(await refusedWith(golemOf(bob))).toBe(403);
    // Without a token (auth off) a golem is nobody's: it may not take a claimed document either.
    expect(await refusedWith(`${ws}/golem/v1/connect/doc-owned`)).toBe(403);
    const minion = await connect(`${ws}/minion/v1/connect/doc-owned?type=visitor&token=${bob}`);
    await send(minion, 'for alice’s golem');
    const golem = await connect(golemOf(alice));
    const hello = await golem.json();
    expect(await refusedWith(`${ws}/golem/v1/connect-to/doc-owned/${hello.ID}?token=${bob}`)).toBe(404);
    const link = await connect(`${ws}/golem/v1/connect-to/doc-owned/${hello.ID}?token=${alice}`);
    expect((await link.next()).text).toBe('for alice’s golem');
    golem.ws.close();
    await minion.closed;
  });

  it('refuse bad document ids, minion ids and query fields', async () => {
    const status = async (path: string) => (await fetch(`${root}${path}`)).status;
    expect(await status('/minion/v1/connect/has%20space')).toBe(400);
    expect(await status(`/minion/v1/connect/${'d'.repeat(99)}!`)).toBe(400);
    expect(await status('/minion/v1/connect/doc?colour=red')).toBe(400);
    // A minion id that is no UUID is one the herder never issued: 404, as the old herder said.
    expect(await status('/golem/v1/connect-to/doc/not-a-uuid')).toBe(404);
    expect(await status('/golem/v1/spawn/bad%20id')).toBe(400);
    expect(await status('/golem/v1/kill/bad%20id')).toBe(400);
  });
});

describe('golems', () => {
  it('serve the bootstrap script', async () => {
    for (const path of ['/golem/v1/', '/']) {
      const res = await fetch(`${root}${path}`);
      expect(res.headers.get('content-type')).toMatch(/^application\/javascript/);
      const text = await res.text();
      expect(text).toContain(`var base = ${JSON.stringify(root)}`);
      expect(text).toContain("document.querySelector('.golem,#emet')");
    }
  });

  it('run a headless Chromium on the document whose golem code answers a minion through the relay; ls, reset, kill', async () => {
    const spawned = await fetch(`${root}/golem/v1/spawn/doc-chromium`);
    expect(spawned.status, await spawned.clone().text()).toBe(200);
    // A second spawn is the same golem.
    expect(await (await fetch(`${root}/golem/v1/spawn/doc-chromium`)).text()).toBe(await spawned.text());
    const ls = await fetch(`${root}/golem/v1/ls`).then((r) => r.json());
    expect(ls).toEqual([expect.objectContaining({ Labels: { webstrate: 'doc-chromium' }, Image: 'chromium' })]);

    // Chromium takes a while on a busy machine: wait for its golem code to connect, then ask.
    const golemConnected = () =>
      eventually(() => Promise.resolve(server.corral.relay.list()), (l) => l.some((c) => c.key === 'golem-herder/doc-chromium' && c.host), 60_000);
    const ask = async () => {
      const minion = await connect(`${ws}/minion/v1/connect/doc-chromium?type=tester`);
      expect(await minion.json(20_000)).toEqual({ Event: 'golem-connected' });
      await send(minion, 'ping');
      expect((await minion.next()).text).toBe('golem of doc-chromium heard tester: ping');
      await send(minion, Buffer.from([1, 2, 3]));
      expect([...(await minion.next()).data]).toEqual([3, 2, 1]);
      minion.ws.close();
    };
    await golemConnected();
    await ask();

    // reset: a fresh Chromium, which connects again.
    expect((await fetch(`${root}/golem/v1/reset/doc-chromium`)).status).toBe(200);
    await eventually(() => Promise.resolve(server.corral.relay.list()), (l) => !l.some((c) => c.key === 'golem-herder/doc-chromium' && c.host), 30_000);
    await golemConnected();
    await ask();

    expect(await (await fetch(`${root}/golem/v1/kill/doc-chromium`)).text()).toBe('killed');
    expect(await fetch(`${root}/golem/v1/ls`).then((r) => r.json())).toEqual([]);
    expect((await fetch(`${root}/golem/v1/kill/doc-chromium`)).status).toBe(404);
  }, 180_000);

  it('proxy to daemons under the prefix too', async () => {
    const form = new FormData();
    form.append('name', 'prefixed');
    form.append('image', 'python');
    form.append('ports', '[80]');
    form.append('main.sh', new Blob(['exec python3 -m http.server "$PORT" --bind 127.0.0.1\n']), 'main.sh');
    form.append('index.html', new Blob(['ok']), 'index.html');
    // The admin's own daemon: the admin's dashboard session is the credential a daemon page
    // on the main origin would try to use.
    const auth = { authorization: `Bearer ${server.adminToken}` };
    await grant(server, 'admin', 1000); // daemons are metered
    const spawned = await fetch(`${root}/daemon/v1/spawn`, { method: 'POST', body: form, headers: auth });
    expect(spawned.status, await spawned.clone().text()).toBe(200);
    const reply = await eventually(
      () =>
        fetch(`${root}/daemon/v1/proxy/prefixed/`, { headers: auth }).then(
          async (r) => [r.status, await r.text(), r.headers.get('content-security-policy')] as const,
        ),
      ([status]) => status === 200,
    );
    expect(reply[1]).toBe('ok');
    // On the main origin a daemon page runs sandboxed (an opaque origin)…
    expect(reply[2]).toMatch(/^sandbox /);
    expect(reply[2]).not.toContain('allow-same-origin');
    // …and the dashboard's session cookie is no credential for it: only tokens are.
    const session = await login(server.url, 'admin', ADMIN_PASSWORD);
    expect((await fetch(`${root}/daemon/v1/proxy/prefixed/`, { headers: { cookie: session.cookie } })).status).toBe(401);
    await fetch(`${root}/daemon/v1/kill/prefixed?wipe=true`, { headers: auth });
  });

  it('say 405 to token generation when no token password is configured', async () => {
    const res = await fetch(`${root}/token/v1/generate`, { method: 'POST', body: new URLSearchParams({ email: 'a@b', password: 'whatever1' }) });
    expect(res.status).toBe(405);
  });
});
