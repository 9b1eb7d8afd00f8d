/**
 * Passkeys in a real browser (Debian's chromium) with Chromium's virtual authenticator
 * (WebAuthn over CDP): register one on the account page, log out, sign in with it from the
 * login page; a credential the server does not know (another authenticator's, or one
 * removed on the account page) is refused. The protocol-level attacks (replayed and forged
 * challenges, counters, bad input) are in test/foundation/passkeys.test.ts.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchBrowser, logInWithForm } from '../helpers/browser.js';
import { api, createUser, startTestServer, type TestServer } from '../helpers/server.js';

// A loaded machine (2 cores, several suites) can take long over a browser step.
vi.setConfig({ testTimeout: 120_000 });

let server: TestServer;
let browser: Browser;
/** WebAuthn needs a secure context and a domain as RP ID: localhost, not 127.0.0.1. */
let main: string;

beforeAll(async () => {
  server = await startTestServer();
  main = `http://localhost:${new URL(server.url).port}`;
  await createUser(server, 'bob');
  browser = await launchBrowser();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

/** A virtual platform authenticator in the page, as a phone or laptop would have. */
async function addAuthenticator(page: Page): Promise<{ id: string; send: (method: string, params?: object) => Promise<any> }> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });
  return { id: authenticatorId, send: (method, params) => cdp.send(method as any, params as any) };
}

async function whoIsSignedIn(context: BrowserContext): Promise<string | number> {
  const me = await context.request.get(`${main}/api/v1/me`);
  return me.status() === 200 ? ((await me.json()) as { user: { name: string } }).user.name : me.status();
}

async function signInWithPasskey(page: Page): Promise<void> {
  await page.goto(`${main}/login?next=/ui/`);
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
}

describe('passkeys in a browser', () => {
  it('registers a passkey on the account page, then signs in with it instead of a password', async () => {
    const { context, page } = await logInWithForm(browser, main, 'bob', 'bob-password');
    const authenticator = await addAuthenticator(page);
    await page.goto(`${main}/ui/#/account`);
    await page.getByLabel('Passkey name').fill('laptop');
    await page.getByRole('button', { name: 'Add a passkey' }).click();
    await expect.poll(() => page.locator('tr[data-passkey]').allTextContents()).toEqual([expect.stringContaining('laptop')]);
    const { credentials } = await authenticator.send('WebAuthn.getCredentials', { authenticatorId: authenticator.id });
    expect(credentials).toHaveLength(1);
    expect(credentials[0].isResidentCredential).toBe(true);

    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForURL(/\/login/);
    expect(await whoIsSignedIn(context)).toBe(401);

    await signInWithPasskey(page);
    await page.waitForURL(`${main}/ui/`);
    expect(await whoIsSignedIn(context)).toBe('bob');
    // Its use is recorded on the account page.
    await page.goto(`${main}/ui/#/account`);
    await expect.poll(() => page.locator('tr[data-passkey] td').nth(2).textContent()).not.toBe('–');

    // Removed on the account page: the same authenticator's credential no longer signs in.
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: 'Remove laptop' }).click();
    await expect.poll(() => page.locator('tr[data-passkey]').count()).toBe(0);
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForURL(/\/login/);
    await signInWithPasskey(page);
    await page.locator('#passkey-error:not([hidden])').waitFor();
    expect(await page.locator('#passkey-error').textContent()).toContain('Sign-in refused');
    expect(await whoIsSignedIn(context)).toBe(401);
    await context.close();
  });

  it("refuses another authenticator's credential the server never registered", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${main}/login`);
    const authenticator = await addAuthenticator(page);
    // A discoverable credential for this site, made outside corral.
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'der', type: 'pkcs8' });
    await authenticator.send('WebAuthn.addCredential', {
      authenticatorId: authenticator.id,
      credential: {
        credentialId: randomBytes(16).toString('base64'),
        isResidentCredential: true,
        rpId: 'localhost',
        privateKey: key.toString('base64'),
        userHandle: Buffer.from('bob').toString('base64'),
        signCount: 1,
      },
    });
    await signInWithPasskey(page);
    await page.locator('#passkey-error:not([hidden])').waitFor();
    expect(await page.locator('#passkey-error').textContent()).toContain('not accepted');
    expect(await whoIsSignedIn(context)).toBe(401);
    await context.close();
  });
});

describe('auth.passkeys.require in a browser', () => {
  let strict: TestServer;
  let url: string;
  beforeAll(async () => {
    strict = await startTestServer({ auth: { passkeys: { requireGroups: ['ops'] } } });
    url = `http://localhost:${new URL(strict.url).port}`;
    await createUser(strict, 'olga');
    await api(strict, strict.adminToken, 'PUT', '/api/v1/users/olga/groups', { groups: ['ops'] });
  }, 60_000);
  afterAll(() => strict?.stop());

  it('sends a password sign-in to the account page to add a passkey, then refuses the password', async () => {
    // Wherever she was going (`/` sends to an instance or the dashboard), she lands on her account page.
    const { context, page } = await logInWithForm(browser, url, 'olga', 'olga-password', { next: '/' });
    await page.waitForURL(/#\/account$/);
    await page.getByText('This account must sign in with a passkey').waitFor();
    await addAuthenticator(page);
    await page.getByRole('button', { name: 'Add a passkey' }).click();
    await expect.poll(() => page.locator('tr[data-passkey]').count()).toBe(1);
    // A full session now: the instances page loads.
    expect((await context.request.get(`${url}/api/v1/instances`)).status()).toBe(200);
    await context.close();

    const again = await browser.newContext();
    const login = await again.newPage();
    await login.goto(`${url}/login`);
    await login.getByLabel('User name').fill('olga');
    await login.getByLabel('Password').fill('olga-password');
    await login.getByRole('button', { name: 'Log in' }).click();
    await login.getByText('sign in with your passkey').waitFor();
    expect((await again.request.get(`${url}/api/v1/me`)).status()).toBe(401);
    await again.close();
  });
});
