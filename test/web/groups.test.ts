/**
 * Groups on the dashboard, in Debian's chromium: an admin sets a user's groups on the users
 * page, sees each group's members, grants credits to a group and sets its quotas (memory in
 * MiB); the user sees their groups, and where each comes from, on their account page.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Browser } from 'playwright-core';
import { launchBrowser, logInWithForm } from '../helpers/browser.js';
import { ADMIN_PASSWORD, api, createUser, startTestServer, type TestServer } from '../helpers/server.js';

// A loaded machine (2 cores, several suites) can take long over a browser step.
vi.setConfig({ testTimeout: 120_000 });

let server: TestServer;
let browser: Browser;

beforeAll(async () => {
  server = await startTestServer();
  await createUser(server, 'ann');
  await createUser(server, 'ben');
  browser = await launchBrowser();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

describe('groups on the dashboard', () => {
  it('lets an admin set groups, grant credits to a group and set its quotas', async () => {
    const { context, page } = await logInWithForm(browser, server.url, 'admin', ADMIN_PASSWORD, { next: '/ui/#/admin/users' });
    const answers = ['team, ops', 'team', '25'];
    page.on('dialog', (d) => void d.accept(answers.shift()));
    await page.getByRole('button', { name: 'Set the groups of ann' }).click();
    await expect.poll(() => page.locator('tr[data-user="ann"]').textContent()).toContain('ops (admin), team (admin)');
    await page.getByRole('button', { name: 'Set the groups of ben' }).click();
    await expect.poll(() => page.locator('tr[data-group="team"]').textContent()).toContain('ann, ben');
    expect(await page.locator('tr[data-group="ops"]').textContent()).not.toContain('ben');

    await page.getByRole('button', { name: 'Grant credits to team' }).click();
    await expect.poll(() => page.locator('tr[data-user="ben"] td').nth(2).textContent()).toBe('25');
    expect((await api(server, server.adminToken, 'GET', '/api/v1/users/ann')).body.credits).toBe(25);

    await page.getByText('Quotas of team').click();
    await page.getByLabel('Memory (MiB) for team').fill('64');
    await page.getByLabel('Instances for team', { exact: true }).fill('3');
    await page.getByRole('button', { name: 'Save the quotas of team' }).click();
    await expect.poll(() => page.locator('tr[data-group="team"]').textContent()).toContain('Memory: 64 MiB');
    const quotas = await api(server, server.adminToken, 'GET', '/api/v1/groups/team/quotas');
    expect(quotas.body.quotas).toMatchObject({ instances: 3, memoryBytes: 64 * 1024 * 1024 });
    await context.close();
  });

  it('shows a user their groups on their account page', async () => {
    await api(server, server.adminToken, 'PUT', '/api/v1/users/ann/groups', { groups: ['team'] });
    const { context, page } = await logInWithForm(browser, server.url, 'ann', 'ann-password', { next: '/ui/#/account' });
    await expect.poll(() => page.locator('ul.groups').textContent()).toBe('team (given by an admin)');
    await context.close();
  });
});
