/**
 * Two servers sharing one PostgreSQL database behind one address: an OIDC sign-in begun on
 * one ends on the other (its pending state is in the database), once — the callback replayed
 * at either server is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/postgres.js';
import { CookieJar, signInUntilCallback, startOidcProvider, type TestOidcProvider } from '../helpers/oidc-provider.js';
import { startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import { copyFile } from 'node:fs/promises';
import path from 'node:path';

let idp: TestOidcProvider;
let a: TestServer;
let b: TestServer;
/** The one address both serve (a load balancer's, here server A's port). */
let main: string;

beforeAll(async () => {
  idp = await startOidcProvider({ alice: { preferred_username: 'alice', email: 'alice@example.test', email_verified: true, groups: ['staff'] } });
  const databaseUrl = await createTestDatabase('ceremonies');
  const oidc = [{ id: 'corp', issuer: idp.issuer, clientId: idp.clientId, clientSecret: idp.clientSecret, scopes: 'openid profile email groups', allowHttp: true }];
  a = await startTestServer({ databaseUrl, auth: { oidc } });
  main = `http://localhost:${new URL(a.url).port}`;
  // Managers of one cluster share the signing key and the public address.
  const dataB = await tempDir();
  await copyFile(path.join(a.data, 'signing-key.json'), path.join(dataB, 'signing-key.json'));
  b = await startTestServer({ data: dataB, databaseUrl, auth: { oidc }, publicUrl: main });
  await idp.configure(`${main}/login/oidc/corp/callback`);
}, 60_000);

afterAll(async () => {
  await b?.stop();
  await a?.stop();
  await idp?.close();
});

/** The same request as the browser's, sent to one server or the other. */
async function at(server: TestServer, url: string, jar: CookieJar) {
  const target = new URL(url);
  const direct = new URL(target.pathname + target.search, `http://localhost:${new URL(server.url).port}`).href;
  const res = await fetch(direct, { redirect: 'manual', headers: { cookie: jar.header(url) } });
  jar.take(url, res);
  return { status: res.status, body: await res.text(), cookies: res.headers.getSetCookie() };
}

describe('sign-in ceremonies across servers', () => {
  it('an OIDC sign-in begun on one server ends on the other, once', async () => {
    // Begun at A (the binding cookie and the pending state are made there).
    const { callback, jar } = await signInUntilCallback(`${main}/login/oidc/corp?next=/ui/`, 'alice');
    const done = await at(b, callback, jar);
    expect(done.status).toBe(302);
    expect(done.cookies.some((c) => c.startsWith('corral_session='))).toBe(true);
    const me = await fetch(`${b.url}/api/v1/me`, { headers: { cookie: jar.header(main) } });
    expect(((await me.json()) as { user: { name: string } }).user.name).toBe('alice');
    // Replayed at either server: the state was taken.
    for (const s of [a, b]) {
      const again = await at(s, callback, jar);
      expect(again.status).toBe(403);
      expect(again.body).toMatch(/already used/);
    }
  });
});
