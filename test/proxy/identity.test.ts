/**
 * X-Corral-Identity: a short-lived JWT signed by the proxy, verifiable with the published
 * key set, naming the user and the instance; a client cannot send its own, and it is not a
 * usable API token.
 */
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostName, proxyWorld, type ProxyWorld } from './fixtures.js';

let w: ProxyWorld;
let off: ProxyWorld;
beforeAll(async () => {
  w = await proxyWorld({ identityAssertion: { enabled: true, ttlSeconds: 30 } });
  off = await proxyWorld();
});
afterAll(async () => {
  await w.close();
  await off.close();
});

const upstreamSaw = async (world: ProxyWorld, headers: Record<string, string>) => {
  const r = await world.onHost(hostName('app', 'alice'), '/', headers);
  expect(r.status).toBe(200);
  return (JSON.parse(r.body) as { headers: Record<string, string> }).headers;
};

describe('X-Corral-Identity', () => {
  it('is a JWT for the user and the instance, verifiable with the published keys', async () => {
    const jwks = await fetch(`${w.server.url}/.well-known/corral-identity.jwks.json`);
    expect(jwks.status).toBe(200);
    const keys = createLocalJWKSet((await jwks.json()) as { keys: [] });
    const jwt = (await upstreamSaw(w, { cookie: w.aliceApp, 'x-corral-identity': 'forged' }))['x-corral-identity']!;
    expect(jwt).not.toBe('forged');
    const { payload, protectedHeader } = await jwtVerify(jwt, keys, { issuer: 'corral-proxy', audience: 'alice/app', algorithms: ['EdDSA'] });
    expect(protectedHeader.alg).toBe('EdDSA');
    expect(payload.sub).toBe('alice');
    expect(payload.role).toBe('user');
    expect(payload.exp! - payload.iat!).toBe(30);
    // Another instance's audience does not accept it.
    await expect(jwtVerify(jwt, keys, { issuer: 'corral-proxy', audience: 'alice/other' })).rejects.toThrow();
  });

  it('is signed with its own key, so it is refused as an API token', async () => {
    const jwt = (await upstreamSaw(w, { cookie: w.aliceApp }))['x-corral-identity']!;
    expect(decodeProtectedHeader(jwt).kid).toBe('corral-identity');
    const res = await fetch(`${w.server.url}/api/v1/instances`, { headers: { authorization: `Bearer ${jwt}` } });
    expect(res.status).toBe(401);
    const through = await w.onHost(hostName('app', 'alice'), '/', { authorization: `Bearer ${jwt}` });
    expect(through.status).toBe(401);
  });

  it('is off by default: no header, a client-sent one stripped, no key set', async () => {
    const seen = await upstreamSaw(off, { cookie: off.aliceApp, 'x-corral-identity': 'forged' });
    expect(seen['x-corral-identity']).toBeUndefined();
    expect(seen['x-corral-user']).toBe('alice');
    const jwks = await fetch(`${off.server.url}/.well-known/corral-identity.jwks.json`);
    expect(jwks.status).toBe(404);
    expect(((await jwks.json()) as { error: { code: string } }).error.code).toBe('not_found');
  });
});
