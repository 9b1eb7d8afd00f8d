/**
 * The dashboard and the proxy in a real browser (Debian's chromium via playwright-core):
 * log in on the main origin (http://localhost:{port}), see an instance, open it on its own
 * host (echo--alice.localhost) through the proxy's login handshake, talk to its WebSocket
 * echo, watch the live log, log out and lose access; a second user cannot open the first
 * user's instance.
 * Screenshots go to test-artifacts/.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, logInWithForm } from '../helpers/browser.js';
import { shot } from '../helpers/screenshots.js';
import { ADMIN_PASSWORD, api, createUser, startTestServer, type TestServer } from '../helpers/server.js';


// The instance: a page whose script opens a WebSocket next to itself and shows the echo, a
// minimal WebSocket echo (the sandbox sees no node_modules, so the handshake is done by hand:
// small unfragmented frames are all this test sends), and a log line every 200 ms.
const APP = `
const http = require('http');
const crypto = require('crypto');
const page = '<!doctype html><title>echo app</title><h1>hello from echo</h1><p id="out">waiting</p><script>' +
  'const ws = new WebSocket("ws://" + location.host + location.pathname + "ws");' +
  'ws.onmessage = (e) => { document.getElementById("out").textContent = e.data; };' +
  'ws.onopen = () => ws.send("ping"); ws.onclose = () => { document.getElementById("out").textContent = "closed"; };</script>';
const server = http.createServer((req, res) => { res.setHeader('content-type', 'text/html'); res.end(page); });
server.on('upgrade', (req, sock) => {
  const accept = crypto.createHash('sha1').update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  sock.write('HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Accept: ' + accept + '\\r\\n\\r\\n');
  sock.on('data', (b) => {
    if ((b[0] & 15) === 8) return sock.end();
    const len = b[1] & 127, mask = b.subarray(2, 6), data = Buffer.alloc(len);
    for (let i = 0; i < len; i++) data[i] = b[6 + i] ^ mask[i % 4];
    const out = Buffer.from('echo: ' + data + ' for ' + req.headers['x-corral-user']);
    sock.write(Buffer.concat([Buffer.from([0x81, out.length]), out]));
  });
  sock.on('error', () => sock.destroy());
});
server.listen(process.env.PORT_HTTP, '127.0.0.1');
let n = 0; setInterval(() => console.log('tick ' + (++n)), 200);
`;

let server: TestServer;
let browser: Browser;
/** The main origin (the session cookie is host-only: the dashboard and the handshake must share it). */
let main: string;
let appUrl: string;
let instanceId: string;

beforeAll(async () => {
  server = await startTestServer();
  main = `http://localhost:${new URL(server.url).port}`;
  appUrl = `http://echo--alice.localhost:${new URL(server.url).port}/`;
  const alice = await createUser(server, 'alice');
  await createUser(server, 'bob');
  const created = await api(server, alice, 'POST', '/api/v1/instances', {
    name: 'echo',
    command: [process.execPath, '-e', APP],
    ports: [{ name: 'http' }],
  });
  expect(created.status).toBe(201);
  instanceId = created.body.id;
  browser = await launchBrowser();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});


/** Opens a fresh browser context, logs in through the form and waits for the dashboard. */
async function loggedIn(name: string, password = `${name}-password`): Promise<{ context: BrowserContext; page: Page }> {
  return logInWithForm(browser, main, name, password, { beforeSubmit: (page) => (name === 'alice' ? shot(page, 'login') : Promise.resolve()) });
}


describe('in a browser', () => {
  it('logs in, sees the instance live, opens it through the proxy, uses its WebSocket, watches its log, logs out', async () => {
    const { context, page } = await loggedIn('alice');

    const row = page.locator('tr[data-instance="echo"]');
    await expect.poll(() => row.locator('.state').textContent(), { timeout: 15_000 }).toBe('running');
    await shot(page, 'instances');

    // Open from the dashboard: the app's own host, reached through the handshake; its page
    // loads and its WebSocket echoes through corral.
    expect(await row.getByRole('link', { name: 'Open' }).getAttribute('href')).toBe(appUrl);
    const app = await context.newPage();
    const res = await app.goto(appUrl);
    expect(res?.status()).toBe(200);
    expect(app.url()).toBe(appUrl);
    await expect.poll(() => app.locator('h1').textContent()).toBe('hello from echo');
    await expect.poll(() => app.locator('#out').textContent(), { timeout: 10_000 }).toBe('echo: ping for alice');
    await shot(app, 'proxied-app');

    // Live log: lines keep arriving.
    await page.goto(`${main}/ui/#/instances/${instanceId}`);
    const log = page.locator('pre.log');
    await expect.poll(() => log.textContent(), { timeout: 10_000 }).toContain('tick');
    const ticks = async () => Number(/tick (\d+)\s*$/.exec((await log.textContent()) ?? '')?.[1] ?? 0);
    const first = await ticks();
    await expect.poll(ticks, { timeout: 10_000 }).toBeGreaterThan(first + 2);
    await shot(page, 'instance-log');

    // Log out: the proxied WebSocket closes and the app is out of reach.
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForURL(/\/login/);
    await expect.poll(() => app.locator('#out').textContent(), { timeout: 10_000 }).toBe('closed');
    const wsClosed = await app.evaluate(() => new Promise<boolean>((resolve) => {
      const ws = new WebSocket(location.href.replace(/^http/, 'ws') + 'ws');
      ws.onopen = () => resolve(false);
      ws.onerror = () => resolve(true);
    }));
    expect(wsClosed).toBe(true);
    const after = await app.goto(appUrl);
    expect(after?.url()).toContain(`${main}/login?next=`);
    await shot(app, 'after-logout');
    await context.close();
  }, 90_000);

  it('shows the admin, jobs and tokens pages, and an admin can add a user from the dashboard', async () => {
    const { context, page } = await loggedIn('admin', ADMIN_PASSWORD);

    await page.goto(`${main}/ui/#/admin/instances`);
    await expect.poll(() => page.locator('tr[data-instance="echo"] td').nth(1).textContent(), { timeout: 10_000 }).toBe('alice');
    await shot(page, 'admin-instances');

    await page.goto(`${main}/ui/#/admin/users`);
    await page.getByLabel('Name', { exact: true }).fill('carol');
    await page.getByLabel('Password', { exact: true }).fill('carol-password');
    await page.getByRole('button', { name: 'Add' }).click();
    await expect.poll(() => page.locator('tr[data-user="carol"]').count(), { timeout: 10_000 }).toBe(1);
    await shot(page, 'admin-users');
    expect((await api(server, server.adminToken, 'GET', '/api/v1/users/carol')).status).toBe(200);

    await page.goto(`${main}/ui/#/tokens`);
    await page.getByLabel('Name', { exact: true }).fill('from-the-browser');
    await page.getByRole('button', { name: 'Create' }).click();
    await expect.poll(() => page.locator('main').textContent(), { timeout: 10_000 }).toContain('shown only now');
    await shot(page, 'tokens');

    await page.goto(`${main}/ui/#/jobs`);
    await expect.poll(() => page.locator('h1').textContent()).toBe('Run a job');
    await page.getByRole('button', { name: 'Run' }).click(); // the defaults run as shipped
    await expect.poll(() => page.locator('main').textContent(), { timeout: 30_000 }).toContain('hello from corral');
    await shot(page, 'jobs');
    await context.close();
  }, 60_000);

  it("a second user cannot open the first user's instance", async () => {
    const { context, page } = await loggedIn('bob');
    await expect.poll(() => page.locator('main').textContent(), { timeout: 10_000 }).toContain('No instances yet');
    const res = await page.goto(appUrl);
    expect(res?.status()).toBe(404); // at the handshake: no code for bob
    expect(await page.content()).not.toContain('hello from echo');
    await shot(page, 'other-user-404');
    await context.close();
  }, 60_000);

  it('a page still loading when the user moves on never draws over the next one', async () => {
    const { context, page } = await loggedIn('bob');
    // The instances page waits for /api/v1/proxy: held until the account page is shown.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    await page.route('**/api/v1/proxy', async (r) => {
      await held;
      await r.continue();
    });
    await page.goto('about:blank');
    const asked = page.waitForRequest('**/api/v1/proxy');
    await page.goto(`${main}/ui/#/instances`);
    await asked; // the instances page is waiting now
    await page.evaluate(() => (location.hash = '#/account'));
    await expect.poll(() => page.locator('h1').textContent(), { timeout: 10_000 }).toBe('My account');
    release();
    await page.waitForResponse('**/api/v1/proxy');
    await page.evaluate(() => new Promise((r) => setTimeout(r, 300)));
    expect(await page.locator('h1').allTextContents()).toEqual(['My account']);
    await context.close();
  }, 60_000);
});
