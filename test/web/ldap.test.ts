/**
 * LDAP sign-in in a real browser (Debian's chromium) through the login form, against a real
 * slapd on 127.0.0.1 (StartTLS with the test CA): a wrong password is told so on the page,
 * the right one lands on the dashboard signed in as the directory's user. The rest is in
 * test/foundation/ldap.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { launchBrowser, logInWithForm } from '../helpers/browser.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { BASE_DN, startSlapd, type TestSlapd } from '../helpers/slapd.js';

let slapd: TestSlapd;
let server: TestServer;
let browser: Browser;

beforeAll(async () => {
  slapd = await startSlapd([{ uid: 'dora', password: 'dora-ldap-pw' }], [{ cn: 'staff', members: ['dora'] }]);
  server = await startTestServer({
    auth: {
      ldap: {
        url: slapd.url,
        startTLS: true,
        caFile: slapd.caFile,
        userDn: `uid={username},ou=people,${BASE_DN}`,
        groupBase: `ou=groups,${BASE_DN}`,
        allowedGroups: ['staff'],
      },
    },
  });
  browser = await launchBrowser();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await slapd?.stop();
});

describe('LDAP sign-in in a browser', () => {
  it('says "Invalid credentials" for a wrong password', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.url}/login`);
    await page.getByLabel('User name').fill('dora');
    await page.getByLabel('Password').fill('not-doras-password');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByText('Invalid credentials').waitFor();
    expect(page.url()).toMatch(/\/login/);
    await context.close();
  });

  it('signs a directory user in through the form, onto the dashboard', async () => {
    const { context } = await logInWithForm(browser, server.url, 'dora', 'dora-ldap-pw');
    const me = await context.request.get(`${server.url}/api/v1/me`);
    expect(me.status()).toBe(200);
    expect(((await me.json()) as { user: { name: string } }).user.name).toBe('dora');
    await context.close();
  });
});
