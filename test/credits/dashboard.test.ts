/**
 * The usage page in a real browser: the balance, a chart of credits over time drawn from
 * the ledger, and the running instance's CPU and memory from its driver stats.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, logInWithForm } from '../helpers/browser.js';
import { ROOT, startTestServer, type TestServer } from '../helpers/server.js';
import { createInstance, waitForState } from '../instances/helpers.js';
import { grant, sleep, userWithCredits } from './helpers.js';

let server: TestServer;
let browser: Browser;

beforeAll(async () => {
  server = await startTestServer({ credits: { intervalSeconds: 0.5 } });
  browser = await launchBrowser();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

describe('usage page', () => {
  it('shows the balance, a chart of credits over time and each running instance’s CPU and memory', async () => {
    const { token } = await userWithCredits(server, 'uma', 500);
    await grant(server, 'uma', 250);
    // Busy for a while, so the CPU column has something to show; 1 credit/s so the chart moves.
    const inst = await createInstance(server, token, {
      name: 'busy',
      shell: 'i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; exec sleep 600',
      metered: true,
    });
    await waitForState(server, token, inst.id, 'running');
    await sleep(1500);

    const { context, page } = await logInWithForm(browser, server.url, 'uma', 'uma-password', { next: '/ui/#/usage' });
    await page.goto(`${server.url}/ui/#/usage`);
    await expect.poll(() => page.locator('h1').textContent()).toBe('My usage');
    const balance = Number(await page.locator('.balance').textContent());
    expect(balance).toBeLessThan(750);
    expect(balance).toBeGreaterThan(700);

    const chart = page.locator('svg.chart');
    // Two grants and at least two metering debits.
    expect(Number(await chart.getAttribute('data-points'))).toBeGreaterThanOrEqual(4);
    expect((await chart.locator('polyline').getAttribute('points'))!.split(' ').length).toBeGreaterThanOrEqual(4);

    const row = page.locator('tr[data-instance="busy"]');
    await expect.poll(() => row.locator('.memory').textContent(), { timeout: 10_000 }).toMatch(/^\d+\.\d MiB of 512\.0 MiB$/);
    await expect.poll(() => row.locator('.cpu').textContent(), { timeout: 10_000 }).toMatch(/^\d+(\.\d+)?%$/);
    await mkdir(path.join(ROOT, 'test-artifacts'), { recursive: true });
    await page.screenshot({ path: path.join(ROOT, 'test-artifacts', 'usage.png'), fullPage: true });
    await context.close();
  }, 60_000);
});
