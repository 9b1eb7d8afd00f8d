/**
 * The dashboard a newcomer expects, in a real browser (Debian's chromium via playwright-core):
 * every runtime's job defaults run as shipped; the API docs load at /api/v1/docs with and
 * without the trailing slash; the instance page shows its buttons (a failed one offers
 * Start, not Stop), ports with their addresses, limits, env var names, restarts and last
 * exit, live CPU and memory charts from real samples, and its log marked by stream with a
 * search and a download; the list shows ports and sparklines; the admin's server page charts
 * the whole server; the app page shows its address, copies, config var names, releases with
 * rollback, a switch in progress and the app's log across deploys.
 * Screenshots go to test-artifacts/.
 */
import { readFile } from 'node:fs/promises';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, logInWithForm } from '../helpers/browser.js';
import { shot } from '../helpers/screenshots.js';
import { ADMIN_PASSWORD, api, createUser, startTestServer, type TestServer } from '../helpers/server.js';
import { createInstance, waitForState } from '../instances/helpers.js';
import { deploy, waitApp, webApp } from '../apps/helpers.js';

const MiB = 1024 * 1024;
// Serves HTTP on its port, holds ~64 MiB (touched, so resident), burns CPU in bursts, logs to both streams.
const BURN = `
const http = require('http');
http.createServer((q, s) => s.end('burn')).listen(Number(process.env.PORT_HTTP), '127.0.0.1');
const b = Buffer.alloc(64 * 1024 * 1024, 1);
console.log('holding ' + b.length + ' bytes');
console.error('a warning on stderr');
setInterval(() => { const end = Date.now() + 150; while (Date.now() < end) Math.sqrt(Math.random()); console.log('tick FINDME ' + Date.now()); }, 200);
`;

let server: TestServer;
let browser: Browser;
let main: string;
let port: string;
let alice: string;
let burnId: string;

beforeAll(async () => {
  server = await startTestServer({ instances: { stats: { intervalSeconds: 0.5 } }, apps: { drainSeconds: 0 } });
  port = new URL(server.url).port;
  main = `http://localhost:${port}`;
  alice = await createUser(server, 'alice');
  const burn = await createInstance(server, alice, {
    name: 'burn',
    command: [process.execPath, '-e', BURN],
    ports: [{ name: 'http' }, { name: 'admin' }],
    env: { GREETING: 'hello', API_SECRET: 'do-not-show-this-value' },
    limits: { memoryBytes: 256 * MiB, cpus: 0.5 },
  });
  burnId = burn.id;
  await waitForState(server, alice, burnId, 'running');
  browser = await launchBrowser();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

const asAlice = () => logInWithForm(browser, main, 'alice', 'alice-password');

describe('jobs page', () => {
  it("runs every runtime's defaults as shipped: the file name and sample follow the runtime", async () => {
    const runtimes = (await api(server, alice, 'GET', '/api/v1/runtimes')).body.runtimes as { name: string; entryFile: string | null }[];
    expect(runtimes.map((r) => r.name)).toEqual(expect.arrayContaining(['node', 'sh']));
    const { context, page } = await asAlice();
    await page.goto(`${main}/ui/#/jobs`);
    await expect.poll(() => page.locator('h1').textContent()).toBe('Run a job');
    for (const r of runtimes.filter((x) => x.name !== 'latex')) {
      await page.getByLabel('Runtime').selectOption(r.name);
      if (r.entryFile) expect(await page.getByLabel('File name').inputValue()).toBe(r.entryFile);
      expect(await page.getByLabel('Code').inputValue()).toContain('hello from corral');
      await page.getByRole('button', { name: 'Run' }).click();
      await expect.poll(() => page.locator('.job-result').textContent(), { timeout: 30_000 }).toContain('exit');
      expect(await page.locator('.job-status').textContent(), `${r.name}: ${await page.locator('.job-result').textContent()}`).toBe('ok');
      expect((await page.locator('.job-stdout').textContent())?.trim()).toBe('hello from corral');
      await shot(page, `jobs-${r.name}`);
    }
    // An edited program stays when the runtime changes; an untouched file name follows it.
    await page.getByLabel('Runtime').selectOption('sh');
    await page.getByLabel('Code').fill('echo mine');
    await page.getByLabel('Runtime').selectOption('node');
    expect(await page.getByLabel('Code').inputValue()).toBe('echo mine');
    expect(await page.getByLabel('File name').inputValue()).toBe('main.js');
    await context.close();
  }, 300_000);
});

describe('API docs', () => {
  for (const at of ['/api/v1/docs', '/api/v1/docs/']) {
    it(`load at ${at}`, async () => {
      const page = await browser.newPage();
      const failed: string[] = [];
      page.on('response', (r) => { if (r.status() >= 400) failed.push(`${r.status()} ${r.url()}`); });
      await page.goto(`${main}${at}`);
      await expect.poll(() => page.locator('.swagger-ui .info .title').textContent().catch(() => ''), { timeout: 15_000 }).toContain('corral API');
      await expect.poll(() => page.locator('.opblock-tag').count(), { timeout: 10_000 }).toBeGreaterThan(3);
      expect(failed).toEqual([]);
      await shot(page, `api-docs${at.endsWith('/') ? '-slash' : ''}`);
      await page.close();
    }, 30_000);
  }
});

describe('instance page', () => {
  it('shows buttons, ports and addresses, limits, env names, restarts, last exit, live charts and a marked, searchable, downloadable log', async () => {
    // A fresh run: its first lines (the stderr warning, corral's start note) are in the live tail.
    expect((await api(server, alice, 'POST', `/api/v1/instances/${burnId}/restart`)).status).toBe(200);
    await waitForState(server, alice, burnId, 'running');
    const { context, page } = await asAlice();
    await page.goto(`${main}/ui/#/instances/${burnId}`);
    await expect.poll(() => page.locator('h1 .state').textContent(), { timeout: 10_000 }).toBe('running');
    await expect(page.getByRole('button', { name: 'Stop burn', exact: true }).count()).resolves.toBe(1);
    await expect(page.getByRole('button', { name: 'Start burn', exact: true }).count()).resolves.toBe(0);
    await expect(page.getByRole('button', { name: 'Restart burn', exact: true }).count()).resolves.toBe(1);

    // Ports with their host ports and addresses: the first port on the instance's own host, the next with --{port}.
    const { body: inst } = await api(server, alice, 'GET', `/api/v1/instances/${burnId}`);
    const rows = page.locator('table.ports tbody tr');
    await expect.poll(() => rows.count()).toBe(2);
    expect(await rows.nth(0).textContent()).toBe(`http${inst.ports[0].hostPort}http://burn--alice.localhost:${port}/`);
    expect(await rows.nth(1).locator('a').getAttribute('href')).toBe(`http://burn--alice--admin.localhost:${port}/`);
    expect(await page.locator('.limits').textContent()).toContain('memory 256.0 MiB');
    expect(await page.locator('.limits').textContent()).toContain('CPU 0.5');
    expect(await page.locator('.env-names').textContent()).toBe('API_SECRET, GREETING');
    expect(await page.locator('main').textContent()).not.toContain('do-not-show-this-value');
    expect(await page.locator('.last-exit').textContent()).toBe('none since this start');
    expect(await page.locator('main').textContent()).toContain('restarted 0 times'); // a restart asked for is no crash

    // Live charts from real samples: CPU above zero (capped at half a core), memory near 64 MiB.
    const cpu = page.getByRole('img', { name: /^CPU: / });
    const memory = page.getByRole('img', { name: /^Memory: / });
    await expect.poll(async () => Number(await cpu.getAttribute('data-samples')), { timeout: 15_000 }).toBeGreaterThan(4);
    await expect.poll(async () => parseFloat((await page.locator('.cpu-now').textContent()) ?? ''), { timeout: 15_000 }).toBeGreaterThan(5);
    expect(parseFloat((await page.locator('.cpu-now').textContent()) ?? '')).toBeLessThan(80);
    await expect.poll(async () => parseFloat((await page.locator('.memory-now').textContent()) ?? ''), { timeout: 15_000 }).toBeGreaterThan(60);
    expect(await memory.getAttribute('aria-label')).toMatch(/MiB$/);
    const before = Number(await cpu.getAttribute('data-samples'));
    await expect.poll(async () => Number(await cpu.getAttribute('data-samples')), { timeout: 10_000 }).toBeGreaterThan(before); // live

    // The log: each line with its time and a stream mark; corral's own notes marked too.
    const log = page.locator('pre.log');
    await expect.poll(() => log.locator('.log-line.stderr').count(), { timeout: 10_000 }).toBeGreaterThan(0);
    expect(await log.locator('.log-line.stderr .mark').first().textContent()).toBe('err');
    // The restart's notes: the tail may begin with "stopped" (when the new run has written little yet).
    expect(await log.locator('.log-line.corral', { hasText: 'corral started' }).first().textContent()).toMatch(/^\d\d:\d\d:\d\d\.\d{3} corral started/);
    expect(await log.locator('.log-line.stdout time').first().getAttribute('datetime')).toMatch(/^\d{4}-\d\d-\d\dT/);
    await shot(page, 'instance-page');

    // Search the kept log on the server.
    await page.getByLabel('Search the log').fill('warning ON STDERR');
    await page.getByRole('button', { name: 'Search' }).click();
    // One warning per run: the first run's and the restarted one's, out of thousands of lines.
    await expect.poll(() => page.locator('.log-status').textContent()).toContain('2 lines containing “warning ON STDERR” in the kept log');
    expect(await log.locator('.log-line').count()).toBe(2);
    for (const line of await log.locator('.log-line').all()) {
      expect(await line.textContent()).toMatch(/^\d\d:\d\d:\d\d\.\d{3} err a warning on stderr\n$/);
    }
    await shot(page, 'instance-log-search');
    await page.getByRole('button', { name: 'Live' }).click();
    await expect.poll(() => log.locator('.log-line').count(), { timeout: 10_000 }).toBeGreaterThan(3);

    // Download all of it.
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download' }).click()]);
    expect(download.suggestedFilename()).toBe('burn.log');
    const text = await readFile((await download.path())!, 'utf8');
    expect(text).toMatch(/Z stderr a warning on stderr\n/);
    expect(text).toMatch(/Z stdout holding 67108864 bytes\n/);

    // Stop: the buttons follow the state.
    await page.getByRole('button', { name: 'Stop burn', exact: true }).click();
    await expect.poll(() => page.locator('h1 .state').textContent(), { timeout: 15_000 }).toBe('stopped');
    await expect.poll(() => page.getByRole('button', { name: 'Start burn', exact: true }).count()).toBe(1);
    await expect.poll(() => page.locator('.last-exit').textContent()).toMatch(/signal SIGTERM|exit code/);
    await page.getByRole('button', { name: 'Start burn', exact: true }).click();
    await expect.poll(() => page.locator('h1 .state').textContent(), { timeout: 15_000 }).toBe('running');
    await context.close();
  }, 120_000);

  it('a failed instance offers Start, not Stop, with its last exit and restart count', async () => {
    const failing = await createInstance(server, alice, { name: 'oops', shell: 'echo "going down" >&2; exit 3', restart: 'never' });
    await waitForState(server, alice, failing.id, 'failed');
    const { context, page } = await asAlice();
    await page.goto(`${main}/ui/#/instances/${failing.id}`);
    await expect.poll(() => page.locator('h1 .state').textContent(), { timeout: 10_000 }).toBe('failed');
    expect(await page.getByRole('button', { name: 'Start oops', exact: true }).count()).toBe(1);
    expect(await page.getByRole('button', { name: 'Stop oops', exact: true }).count()).toBe(0);
    expect(await page.locator('.last-exit').textContent()).toBe('exit code 3');
    expect(await page.locator('main').textContent()).toContain('restarted 0 times');
    await shot(page, 'instance-failed');
    // And in the list.
    await page.goto(`${main}/ui/#/instances`);
    const row = page.locator('tr[data-instance="oops"]');
    await expect.poll(() => row.getByRole('button', { name: 'Start oops', exact: true }).count(), { timeout: 10_000 }).toBe(1);
    expect(await row.getByRole('button', { name: 'Stop oops', exact: true }).count()).toBe(0);
    await context.close();
  }, 60_000);

  it('the list shows ports and live CPU and memory sparklines', async () => {
    await waitForState(server, alice, burnId, 'running');
    const { context, page } = await asAlice();
    const row = page.locator('tr[data-instance="burn"]');
    await expect.poll(() => row.locator('td.ports').textContent(), { timeout: 10_000 }).toMatch(/^http:\d+ admin:\d+$/);
    const spark = row.getByRole('img', { name: /^CPU of burn: / });
    await expect.poll(async () => Number(await spark.getAttribute('data-samples')), { timeout: 15_000 }).toBeGreaterThan(2);
    await expect.poll(async () => row.getByRole('img', { name: /^Memory of burn: / }).getAttribute('aria-label'), { timeout: 15_000 }).toMatch(/MiB$/);
    await shot(page, 'instances-sparklines');
    await context.close();
  }, 60_000);
});

describe("the proxy's own pages on an instance host", () => {
  it('are styled by their own stylesheet, not the app-answered /ui/style.css', async () => {
    const sleepy = await createInstance(server, alice, { name: 'sleepy', shell: 'exec sleep 600', ports: [{ name: 'http' }] });
    await waitForState(server, alice, sleepy.id, 'running');
    await api(server, alice, 'POST', `/api/v1/instances/${sleepy.id}/stop`);
    await waitForState(server, alice, sleepy.id, 'stopped');
    const { context, page } = await asAlice();
    const asked: string[] = [];
    page.on('request', (r) => asked.push(r.url()));
    const res = await page.goto(`http://sleepy--alice.localhost:${port}/`);
    expect(res?.status()).toBe(503);
    expect(await page.locator('h1').textContent()).toBe('Stopped');
    const look = await page.evaluate(() => {
      const main = getComputedStyle(document.querySelector('main')!);
      return { background: getComputedStyle(document.body).backgroundColor, border: main.borderTopStyle, radius: main.borderTopLeftRadius };
    });
    expect(look).toEqual({ background: 'rgb(246, 247, 249)', border: 'solid', radius: '8px' });
    expect(asked.filter((u) => u.includes('style.css'))).toEqual([]);
    await shot(page, 'proxy-stopped-page');
    await context.close();
  }, 60_000);
});

describe('server page', () => {
  it("charts the whole server for admins: the instances' sums, corral itself", async () => {
    const { context, page } = await logInWithForm(browser, main, 'admin', ADMIN_PASSWORD);
    await page.getByRole('link', { name: 'Server' }).click();
    await expect.poll(() => page.locator('h1').textContent()).toBe('Server');
    await expect.poll(async () => Number(await page.locator('.running').textContent()), { timeout: 15_000 }).toBeGreaterThanOrEqual(1);
    const cpu = page.getByRole('img', { name: /^Server CPU: / });
    await expect.poll(async () => Number(await cpu.getAttribute('data-samples')), { timeout: 15_000 }).toBeGreaterThan(4);
    expect(await page.getByRole('img', { name: /^Server memory: / }).getAttribute('aria-label')).toMatch(/instances [\d.]+ MiB, corral [\d.]+ MiB/);
    await shot(page, 'server');
    await context.close();
    // Not for users: no link, and the API says no.
    const user = await asAlice();
    expect(await user.page.getByRole('link', { name: 'Server' }).isVisible()).toBe(false);
    expect((await api(server, alice, 'GET', '/api/v1/stats')).status).toBe(403);
    await user.context.close();
  }, 60_000);
});

describe('app page', () => {
  it('shows the address, copies, config var names, releases with rollback, a switch in progress and the log across deploys', async () => {
    const slow = (tag: string) => webApp(tag, { procfile: `web: echo "booting ${tag}"; sleep 2; exec node server.js\n` });
    expect((await deploy(server, alice, 'shop', slow('v1'), { env: { SHOP_KEY: 'value-never-shown' } })).status).toBe(201);
    const { context, page } = await asAlice();
    page.on('dialog', (d) => void d.accept());
    await page.getByRole('link', { name: 'Apps' }).click();
    await page.locator('tr[data-app="shop"]').getByRole('link', { name: 'shop', exact: true }).click();
    await expect.poll(() => page.locator('h1').textContent(), { timeout: 10_000 }).toBe('shop v1');
    expect(await page.locator('.app-url').getAttribute('href')).toBe(`http://shop--alice.localhost:${port}/`);
    expect(await page.locator('.config-vars').textContent()).toBe('SHOP_KEY');
    expect(await page.locator('main').textContent()).not.toContain('value-never-shown');
    await expect.poll(() => page.locator('tr[data-copy="shop.web.1"]').textContent()).toContain('active');

    // A deploy from elsewhere: the page shows the switch while it runs, then v2.
    const v2 = deploy(server, alice, 'shop', slow('v2'));
    await expect.poll(() => page.locator('.switch-state').textContent(), { timeout: 15_000 }).toMatch(/^switching to v2: /);
    await shot(page, 'app-switching');
    expect((await v2).status).toBe(201);
    await expect.poll(() => page.locator('h1').textContent(), { timeout: 20_000 }).toBe('shop v2');
    await expect.poll(() => page.locator('.switch-state').textContent(), { timeout: 20_000 }).toBe('none in progress');

    // The app's log keeps v1's copy's lines after the copy is gone, marked with the copy.
    const log = page.locator('pre.log');
    await expect.poll(() => log.textContent(), { timeout: 15_000 }).toContain('booting v2');
    expect(await log.textContent()).toContain('booting v1');
    expect(await log.locator('.log-line', { hasText: 'booting v1' }).locator('.source').textContent()).toBe('web.1');

    // Roll back to v1 from the releases table.
    await page.getByRole('button', { name: 'Roll back to v1' }).click();
    await expect.poll(() => page.locator('h1').textContent(), { timeout: 30_000 }).toBe('shop v3');
    expect(await page.locator('tr[data-release="3"]').textContent()).toContain('rollback to v1');
    await shot(page, 'app');
    await waitApp(server, alice, 'shop', (a) => a.switch === null);
    await context.close();
  }, 120_000);
});
