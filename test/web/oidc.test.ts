/**
 * The full OpenID Connect sign-in in a real browser (Debian's chromium): the login page's
 * provider button, the provider's own login form (a real oidc-provider on 127.0.0.1), and
 * back to corral's dashboard with a session. The attacks are in test/foundation/oidc.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { launchBrowser } from '../helpers/browser.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { startOidcProvider, type TestOidcProvider } from '../helpers/oidc-provider.js';

let idp: TestOidcProvider;
let server: TestServer;
let browser: Browser;
let main: string;

beforeAll(async () => {
  idp = await startOidcProvider({ carol: { preferred_username: 'carol', email: 'carol@example.test', email_verified: true, groups: ['staff'] } });
  server = await startTestServer({
    auth: {
      oidc: [{ id: 'corp', label: 'Sign in with Corp', issuer: idp.issuer, clientId: idp.clientId, clientSecret: idp.clientSecret, scopes: 'openid profile email groups', allowHttp: true }],
    },
  });
  main = `http://localhost:${new URL(server.url).port}`;
  await idp.configure(`${main}/login/oidc/corp/callback`);
  browser = await launchBrowser();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await idp?.close();
});

describe('OpenID Connect sign-in in a browser', () => {
  it('goes from the login button through the provider to the dashboard, signed in', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${main}/login?next=/ui/`);
    await page.getByRole('link', { name: 'Sign in with Corp' }).click();
    await page.waitForURL((u) => u.href.startsWith(idp.issuer));
    await page.getByPlaceholder('Enter any login').fill('carol');
    await page.getByPlaceholder('and password').fill('whatever');
    await page.getByRole('button', { name: 'Sign-in' }).click();
    await page.waitForURL(`${main}/ui/`);
    const me = await context.request.get(`${main}/api/v1/me`);
    expect(me.status()).toBe(200);
    expect(((await me.json()) as { user: { name: string } }).user.name).toBe('carol');
    await context.close();
  });
});
