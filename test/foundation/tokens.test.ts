/** Token verification: every forged, altered, expired or revoked token gets 401 saying which. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { SignJWT, decodeJwt, exportSPKI, generateKeyPair, importJWK, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createUser, login, startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
let userToken: string;
beforeAll(async () => {
  server = await startTestServer();
  userToken = await createUser(server, 'grace');
});
afterAll(() => server.stop());

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

async function expect401(token: string, code: string, message: RegExp) {
  const res = await api(server, token, 'GET', '/api/v1/me');
  expect(res.status).toBe(401);
  expect(res.body.error.code).toBe(code);
  expect(res.body.error.message).toMatch(message);
}

/** The server's own signing key, read from its data directory (what an attacker lacks). */
async function serverKey() {
  const jwk = JSON.parse(await readFile(path.join(server.data, 'signing-key.json'), 'utf8')) as JWK;
  return importJWK(jwk, 'EdDSA');
}

describe('presenting a token', () => {
  it('accepts Bearer in any case and ?token=', async () => {
    for (const scheme of ['Bearer', 'bearer', 'BEARER']) {
      const res = await fetch(`${server.url}/api/v1/me`, { headers: { authorization: `${scheme} ${userToken}` } });
      expect(res.status).toBe(200);
    }
    const q = await api(server, undefined, 'GET', `/api/v1/me?token=${userToken}`);
    expect(q.status).toBe(200);
    expect(q.body.user.name).toBe('grace');
  });

  it('refuses an Authorization header that is not Bearer', async () => {
    const res = await fetch(`${server.url}/api/v1/me`, { headers: { authorization: `Basic ${btoa('grace:grace-password')}` } });
    expect(res.status).toBe(401);
  });
});

describe('refused tokens', () => {
  it('a malformed token', () => expect401('not.a.jwt', 'token_invalid', /malformed/));

  it('a tampered payload (more scopes, same signature)', async () => {
    const [header, , signature] = userToken.split('.');
    const claims = decodeJwt(userToken);
    const forged = `${header}.${b64({ ...claims, scope: 'admin:read admin:write' })}.${signature}`;
    await expect401(forged, 'token_invalid', /signature does not verify/);
  });

  it('alg: none', async () => {
    const claims = decodeJwt(userToken);
    await expect401(`${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`, 'token_invalid', /algorithm "none" is not accepted/);
  });

  it('HS256 signed with the server public key as the HMAC secret', async () => {
    const jwk = JSON.parse(await readFile(path.join(server.data, 'signing-key.json'), 'utf8')) as JWK;
    const { d: _, ...publicJwk } = jwk;
    const publicPem = await exportSPKI((await importJWK(publicJwk, 'EdDSA', { extractable: true })) as CryptoKey);
    const forged = await new SignJWT(decodeJwt(userToken))
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .sign(new TextEncoder().encode(publicPem));
    await expect401(forged, 'token_invalid', /algorithm "HS256" is not accepted/);
  });

  it('signed by another Ed25519 key', async () => {
    const other = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const forged = await new SignJWT(decodeJwt(userToken)).setProtectedHeader({ alg: 'EdDSA', typ: 'JWT' }).sign(other.privateKey);
    await expect401(forged, 'token_invalid', /signature does not verify/);
  });

  it('expired', async () => {
    const claims = decodeJwt(userToken);
    const now = Math.floor(Date.now() / 1000);
    const expired = await new SignJWT({ ...claims, iat: now - 7200, exp: now - 3600 })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT' })
      .sign(await serverKey());
    await expect401(expired, 'token_expired', /expired/);
  });

  it('expired after it was accepted: refused once its time is up (a verified token is remembered, its expiry still checked)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const soon = await new SignJWT({ ...decodeJwt(userToken), iat: now, exp: now + 2 })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT' })
      .sign(await serverKey());
    expect((await api(server, soon, 'GET', '/api/v1/me')).status).toBe(200);
    await new Promise((r) => setTimeout(r, (now + 2) * 1000 - Date.now() + 50));
    await expect401(soon, 'token_expired', /expired/);
  });

  it('validly signed but never issued (unknown jti)', async () => {
    const forged = await new SignJWT({ ...decodeJwt(userToken), jti: '00000000-0000-4000-8000-000000000000' })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT' })
      .sign(await serverKey());
    await expect401(forged, 'token_invalid', /not known/);
  });

  it('revoked: refused on the very next request', async () => {
    const created = await api(server, userToken, 'POST', '/api/v1/tokens', { name: 'short-lived' });
    const token = created.body.token as string;
    expect((await api(server, token, 'GET', '/api/v1/me')).status).toBe(200);
    expect((await api(server, userToken, 'DELETE', `/api/v1/tokens/${created.body.info.id}`)).status).toBe(200);
    await expect401(token, 'token_revoked', /revoked/);
  });

  it('of a deleted user', async () => {
    const token = await createUser(server, 'heidi');
    expect((await api(server, server.adminToken, 'DELETE', '/api/v1/users/heidi')).status).toBe(204);
    const res = await api(server, token, 'GET', '/api/v1/me');
    expect(res.status).toBe(401);
  });
});

describe('scopes and ownership', () => {
  it('a token cannot mint a token with more scopes than it holds', async () => {
    const narrow = (await api(server, userToken, 'POST', '/api/v1/tokens', { name: 'narrow', scopes: ['jobs:read'] })).body.token as string;
    const wider = await api(server, narrow, 'POST', '/api/v1/tokens', { name: 'wider', scopes: ['jobs:write'] });
    expect(wider.status).toBe(403);
    expect(wider.body.error.message).toContain('jobs:write');
    // Without scopes, the new token inherits the narrow token's scopes, not the user's.
    const inherited = await api(server, narrow, 'POST', '/api/v1/tokens', { name: 'inherited' });
    expect(inherited.status).toBe(201);
    expect(inherited.body.info.scopes).toEqual(['jobs:read']);
  });

  it('a token cannot mint a token that outlives it', async () => {
    const parent = await api(server, userToken, 'POST', '/api/v1/tokens', { name: 'hour', ttlSeconds: 3600 });
    const parentExpiry = Date.parse(parent.body.info.expiresAt);
    for (const [name, body] of [['month', { ttlSeconds: 30 * 86400 }], ['default', {}]] as const) {
      const child = await api(server, parent.body.token, 'POST', '/api/v1/tokens', { name, ...body });
      expect(child.status).toBe(201);
      expect(Date.parse(child.body.info.expiresAt)).toBeLessThanOrEqual(parentExpiry);
      expect(Date.parse(child.body.info.expiresAt)).toBeGreaterThan(parentExpiry - 60_000);
    }
    // A user at a session (no parent token) gets what they ask for.
    const s = await login(server.url, 'grace', 'grace-password');
    const long = await fetch(`${server.url}/api/v1/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie: s.cookie, 'x-csrf-token': s.csrfToken },
      body: JSON.stringify({ name: 'from-session', ttlSeconds: 30 * 86400 }),
    });
    const info = ((await long.json()) as { info: { expiresAt: string } }).info;
    expect(Date.parse(info.expiresAt) - Date.now()).toBeGreaterThan(29 * 86400_000);
  });

  it('a user cannot hold admin scopes nor reach admin routes', async () => {
    const asked = await api(server, userToken, 'POST', '/api/v1/tokens', { name: 'sneaky', scopes: ['admin:write'] });
    expect(asked.status).toBe(403);
    for (const [method, url, body] of [
      ['GET', '/api/v1/users'],
      ['POST', '/api/v1/users', { name: 'mallory', password: 'mallory-password' }],
      ['PATCH', '/api/v1/users/grace', { role: 'admin' }],
      ['DELETE', '/api/v1/users/admin'],
    ] as const) {
      const res = await api(server, userToken, method, url, body);
      expect(res.status, `${method} ${url}`).toBe(403);
      expect(res.body.error.code).toBe('forbidden');
    }
  });

  it("a user sees only their own tokens and cannot revoke another's", async () => {
    const mine = await api(server, userToken, 'GET', '/api/v1/tokens');
    expect(mine.body.tokens.length).toBeGreaterThan(0);
    expect(mine.body.tokens.every((t: { user: string }) => t.user === 'grace')).toBe(true);
    const adminTokens = (await api(server, server.adminToken, 'GET', '/api/v1/tokens')).body.tokens as { id: string }[];
    const res = await api(server, userToken, 'DELETE', `/api/v1/tokens/${adminTokens[0]!.id}`);
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('token_not_found');
    expect((await api(server, server.adminToken, 'GET', '/api/v1/me')).status).toBe(200);
  });

  it('a token without admin scopes held by an admin cannot reach admin routes', async () => {
    const jobsOnly = (await api(server, server.adminToken, 'POST', '/api/v1/tokens', { name: 'admin-jobs', scopes: ['jobs:write'] })).body.token as string;
    const res = await api(server, jobsOnly, 'GET', '/api/v1/users');
    expect(res.status).toBe(403);
    expect(res.body.error.message).toContain('admin:read');
  });
});
