/**
 * OpenID Connect sign-in against a real provider (oidc-provider) on 127.0.0.1: the whole
 * code + PKCE dance over HTTP, then every attack the callback must refuse — a forged,
 * replayed or other browser's state, and ID tokens with a wrong nonce, another issuer or
 * audience, an expiry in the past or a signature by another key — plus the provider's rules
 * (allowed groups, admin groups, no silent takeover of a local user). A refusal is a clear
 * page and leaves no user and no session behind. The browser test is in test/web/oidc.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rm } from 'node:fs/promises';
import { loadConfig } from '../../src/core/config.js';
import { startServer } from '../../src/server.js';
import { ADMIN_PASSWORD, api, startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import { CookieJar, signInUntilCallback, startOidcProvider, type TestOidcProvider } from '../helpers/oidc-provider.js';

let idp: TestOidcProvider;
let server: TestServer;
let main: string;

const ACCOUNTS = {
  alice: { preferred_username: 'alice', email: 'alice@example.test', email_verified: true, groups: ['staff'] },
  boss: { preferred_username: 'boss', email: 'boss@example.test', email_verified: true, groups: ['staff', 'corral-admins'] },
  mallory: { preferred_username: 'mallory', email: 'mallory@example.test', email_verified: true, groups: ['visitors'] },
  victim: { preferred_username: 'victim', email: 'victim@example.test', email_verified: true, groups: ['staff'] },
  eve: { preferred_username: 'eve', email: 'eve@example.test', email_verified: true, groups: ['staff'] },
};

beforeAll(async () => {
  idp = await startOidcProvider(ACCOUNTS);
  server = await startTestServer({
    auth: {
      oidc: [
        {
          id: 'corp',
          label: 'Sign in with Corp',
          issuer: idp.issuer,
          clientId: idp.clientId,
          clientSecret: idp.clientSecret,
          scopes: 'openid profile email groups',
          allowedGroups: ['staff'],
          adminGroups: ['corral-admins'],
          allowHttp: true,
        },
      ],
    },
  });
  main = `http://localhost:${new URL(server.url).port}`;
  await idp.configure(`${main}/login/oidc/corp/callback`);
}, 60_000);

afterAll(async () => {
  await server?.stop();
  await idp?.close();
});

const start = () => `${main}/login/oidc/corp?next=/ui/`;

async function callCorral(url: string, jar: CookieJar): Promise<{ status: number; location: string | null; cookies: string[]; body: string }> {
  const res = await fetch(url, { redirect: 'manual', headers: { cookie: jar.header(url) } });
  jar.take(url, res);
  return { status: res.status, location: res.headers.get('location'), cookies: res.headers.getSetCookie(), body: await res.text() };
}

async function userExists(name: string): Promise<boolean> {
  const res = await api(server, server.adminToken, 'GET', '/api/v1/users');
  return (res.body.users as { name: string }[]).some((u) => u.name === name);
}

async function expectRefused(r: { status: number; cookies: string[]; body: string }, reason: RegExp): Promise<void> {
  expect(r.status).toBe(403);
  expect(r.body).toContain('Sign-in refused');
  expect(r.body).toMatch(reason);
  expect(r.cookies.some((c) => c.startsWith('corral_session='))).toBe(false);
}

describe('OpenID Connect sign-in', () => {
  it('shows a button per provider on the login page', async () => {
    const res = await fetch(`${main}/login`);
    const html = await res.text();
    expect(html).toContain('href="/login/oidc/corp"');
    expect(html).toContain('Sign in with Corp');
    expect(html).toContain('name="password"');
  });

  it('signs in with code + PKCE, creates the user once, and the session works as a local one', async () => {
    const { callback, jar } = await signInUntilCallback(start(), 'alice');
    const u = new URL(callback);
    expect(u.searchParams.get('state')).toBeTruthy();
    const r = await callCorral(callback, jar);
    expect(r.status).toBe(302);
    expect(r.location).toBe('/ui/');
    const me = await fetch(`${main}/api/v1/me`, { headers: { cookie: jar.header(main) } });
    expect(me.status).toBe(200);
    expect(((await me.json()) as { user: { name: string; role: string } }).user).toMatchObject({ name: 'alice', role: 'user' });

    // The second sign-in is the same user (linked by subject), not a new one.
    const again = await signInUntilCallback(start(), 'alice');
    expect((await callCorral(again.callback, again.jar)).status).toBe(302);
    const users = (await api(server, server.adminToken, 'GET', '/api/v1/users')).body.users as { name: string }[];
    expect(users.filter((x) => x.name === 'alice')).toHaveLength(1);
    // The provider's groups are the user's, with their source.
    const groups = await api(server, server.adminToken, 'GET', '/api/v1/users/alice/groups');
    expect(groups.body.memberships).toEqual([{ group: 'staff', source: 'oidc:corp' }]);

    // Such a user has no password: the password form does not let anyone in as them.
    const pw = await fetch(`${server.url}/api/v1/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: server.url },
      body: JSON.stringify({ name: 'alice', password: '!external' }),
    });
    expect(pw.status).toBe(401);
  });

  it('makes members of the admin groups admins', async () => {
    const { callback, jar } = await signInUntilCallback(start(), 'boss');
    expect((await callCorral(callback, jar)).status).toBe(302);
    const me = await fetch(`${main}/api/v1/me`, { headers: { cookie: jar.header(main) } });
    expect(((await me.json()) as { user: { role: string } }).user.role).toBe('admin');
  });

  it('refuses a forged state', async () => {
    const { callback, jar } = await signInUntilCallback(start(), 'eve');
    const forged = new URL(callback);
    forged.searchParams.set('state', 'forged-state-value');
    await expectRefused(await callCorral(forged.href, jar), /state/);
    expect(await userExists('eve')).toBe(false);
  });

  it('refuses a replayed callback', async () => {
    const { callback, jar } = await signInUntilCallback(start(), 'alice');
    expect((await callCorral(callback, jar)).status).toBe(302);
    await expectRefused(await callCorral(callback, new CookieJar()), /state/);
    await expectRefused(await callCorral(callback, jar), /already used/);
  });

  it("refuses a callback sent from another browser (the state is bound to the one that began it)", async () => {
    const { callback } = await signInUntilCallback(start(), 'eve');
    const other = new CookieJar();
    await callCorral(`${main}/login/oidc/corp`, other); // the attacker's own binding cookie
    await expectRefused(await callCorral(callback, other), /another browser/);
    expect(await userExists('eve')).toBe(false);
  });

  const tampered: [string, NonNullable<TestOidcProvider['tamper']>, RegExp][] = [
    ['a wrong nonce', { claims: (c) => ({ ...c, nonce: 'not-the-nonce' }) }, /nonce/],
    ['another issuer', { claims: (c) => ({ ...c, iss: 'https://other-issuer.example.test' }) }, /iss/],
    ['another audience', { claims: (c) => ({ ...c, aud: 'someone-else' }) }, /aud/],
    ['an expired ID token', { claims: (c) => ({ ...c, iat: c.iat! - 7200, exp: Math.floor(Date.now() / 1000) - 3600 }) }, /exp/],
    ['a signature by another key', { foreignKey: true }, /signature|JWS|verif/i],
  ];
  for (const [what, tamper, reason] of tampered) {
    it(`refuses an ID token with ${what}, creating nothing`, async () => {
      idp.tamper = tamper;
      try {
        const { callback, jar } = await signInUntilCallback(start(), 'eve');
        await expectRefused(await callCorral(callback, jar), reason);
      } finally {
        idp.tamper = undefined;
      }
      expect(await userExists('eve')).toBe(false);
    });
  }

  it('refuses a user outside the allowed groups, creating nothing', async () => {
    const { callback, jar } = await signInUntilCallback(start(), 'mallory');
    await expectRefused(await callCorral(callback, jar), /only members of staff/);
    expect(await userExists('mallory')).toBe(false);
  });

  it('does not take over an existing local user unless the admin allows linking', async () => {
    expect((await api(server, server.adminToken, 'POST', '/api/v1/users', { name: 'victim', password: 'victim-local-password-1' })).status).toBe(201);
    const { callback, jar } = await signInUntilCallback(start(), 'victim');
    await expectRefused(await callCorral(callback, jar), /already exists/);
  });

  it('answers an unknown provider with the login page', async () => {
    const res = await fetch(`${main}/login/oidc/nope`, { redirect: 'manual' });
    expect(res.status).toBe(404);
    expect(await res.text()).toContain('no identity provider');
  });
});

describe('auth.localPasswords: false', () => {
  it('hides the password form and refuses password logins, even the first admin\'s', async () => {
    const data = await tempDir();
    const off = await startServer(
      loadConfig({
        env: {},
        flags: { host: '127.0.0.1', port: 0, logLevel: 'silent', adminPassword: ADMIN_PASSWORD, data, auth: { localPasswords: false, oidc: [{ id: 'corp', issuer: 'http://127.0.0.1:9/', clientId: 'x', allowHttp: true }] } },
      }),
    );
    try {
      const html = await (await fetch(`${off.url}/login`)).text();
      expect(html).toContain('href="/login/oidc/corp"');
      expect(html).not.toContain('name="password"');
      const res = await fetch(`${off.url}/api/v1/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: off.url },
        body: JSON.stringify({ name: 'admin', password: ADMIN_PASSWORD }),
      });
      expect(res.status).toBe(403);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('local_passwords_off');
      // A provider that is down: a clear page at once, not a hang.
      const down = await fetch(`${off.url}/login/oidc/corp`, { redirect: 'manual' });
      expect(down.status).toBe(502);
      expect(await down.text()).toContain('did not answer');
    } finally {
      await off.close();
      await rm(data, { recursive: true, force: true });
    }
  });
});
