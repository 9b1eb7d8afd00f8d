/**
 * `X-Corral-Identity`: who the proxy let through, as a short-lived signed JWT, for apps that
 * want proof rather than trusting `X-Corral-User` (which any process that can reach the
 * instance's port could also send). EdDSA, signed with a key of its own (`identity-key.json`
 * in the data dir, never the API token key, so an assertion is never a usable API token);
 * the public key is served at `/.well-known/corral-identity.jwks.json`.
 *
 * Claims: iss "corral-proxy", sub = user name, aud = "owner/instance", role, iat, exp.
 * Signing costs ~0.1 ms, so an assertion is reused until half its lifetime has passed.
 */
import { exportJWK, SignJWT } from 'jose';
import { loadSigningKey, TOKEN_ALG, type SigningKey } from '../core/accounts/signing-key.js';

export const IDENTITY_ISSUER = 'corral-proxy';
const KEY_FILE = 'identity-key.json';
const MAX_CACHED = 10_000;

export class IdentityAssertions {
  private key: Promise<SigningKey> | undefined;
  private readonly cache = new Map<string, { jwt: string; renewAt: number }>();

  constructor(
    private readonly dataDir: string,
    private readonly ttlSeconds: number,
  ) {}

  /** The assertion for `user` reaching `audience` ("owner/instance"). */
  async for(user: { name: string; role: string }, audience: string): Promise<string> {
    const cacheKey = `${user.name}\n${user.role}\n${audience}`;
    const now = Date.now();
    const hit = this.cache.get(cacheKey);
    if (hit && hit.renewAt > now) return hit.jwt;
    const iat = Math.floor(now / 1000);
    const jwt = await new SignJWT({ role: user.role })
      .setProtectedHeader({ alg: TOKEN_ALG, typ: 'JWT', kid: 'corral-identity' })
      .setIssuer(IDENTITY_ISSUER)
      .setSubject(user.name)
      .setAudience(audience)
      .setIssuedAt(iat)
      .setExpirationTime(iat + this.ttlSeconds)
      .sign((await this.signingKey()).privateKey);
    if (this.cache.size >= MAX_CACHED) this.cache.clear();
    this.cache.set(cacheKey, { jwt, renewAt: now + (this.ttlSeconds * 1000) / 2 });
    return jwt;
  }

  /** The public key set apps verify assertions with. */
  async jwks(): Promise<{ keys: object[] }> {
    const jwk = await exportJWK((await this.signingKey()).publicKey);
    return { keys: [{ ...jwk, alg: TOKEN_ALG, use: 'sig', kid: 'corral-identity' }] };
  }

  private signingKey(): Promise<SigningKey> {
    this.key ??= loadSigningKey(this.dataDir, KEY_FILE);
    return this.key;
  }
}
