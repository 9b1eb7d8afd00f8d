/**
 * API tokens: JWTs signed with the server's Ed25519 key whose `jti` is recorded in the store,
 * so a token can be listed and revoked and revocation takes effect on the next request.
 * The algorithm is pinned: `alg: none`, HMAC confusion and foreign keys are all refused.
 */
import { randomUUID } from 'node:crypto';
import { SignJWT, decodeProtectedHeader, errors as joseErrors, jwtVerify } from 'jose';
import { errors } from '../errors.js';
import type { Store } from '../../store/index.js';
import { scopesForRole } from './scopes.js';
import { TOKEN_ALG, type SigningKey } from './signing-key.js';
import type { Principal, Scope, TokenInfo, User } from './types.js';

const ISSUER = 'corral';
const TOUCH_EVERY_MS = 60_000;
/** Tokens whose signature was verified, kept at most (oldest dropped first). */
const VERIFIED_MAX = 1000;

export class TokenService {
  private readonly touched = new Map<string, number>();
  /**
   * Tokens (the exact string) whose signature verified, with their jti and expiry: a client
   * presents the same token on every request, and the Ed25519 verification was the largest
   * single cost of authenticating one (~0.2 ms). The revocation and owner checks below still
   * read the store every time; the expiry is checked against the clock on every use.
   */
  private readonly verified = new Map<string, { jti: string | undefined; expiresMs: number }>();

  constructor(
    private readonly store: Store,
    private readonly key: SigningKey,
    private readonly defaultTtlSeconds: number,
  ) {}

  async create(
    user: User,
    req: { name: string; scopes?: Scope[] | undefined; ttlSeconds?: number | undefined; credits?: number | undefined },
  ): Promise<{ token: string; info: TokenInfo }> {
    const allowed = scopesForRole(user.role);
    const scopes = req.scopes ?? allowed;
    const refused = scopes.filter((s) => !allowed.includes(s));
    if (refused.length) throw errors.forbidden(`a ${user.role} cannot hold scope ${refused.join(', ')}`);
    if (await this.store.tokens.nameTaken(user.id, req.name)) throw errors.tokenNameExists(req.name);

    const id = randomUUID();
    const now = Math.floor(Date.now() / 1000);
    const exp = now + (req.ttlSeconds ?? this.defaultTtlSeconds);
    // `credits` top up the owner once, the first time the token is used (golem-herder's rule).
    await this.store.tokens.insert({ id, userId: user.id, name: req.name, scopes, expiresAt: exp * 1000, credits: req.credits ?? 0 });
    const token = await new SignJWT({ scope: scopes.join(' ') })
      .setProtectedHeader({ alg: TOKEN_ALG, typ: 'JWT' })
      .setIssuer(ISSUER)
      .setSubject(user.id)
      .setJti(id)
      .setIssuedAt(now)
      .setExpirationTime(exp)
      .sign(this.key.privateKey);
    const info = await this.store.tokens.byId(id);
    return { token, info: stripUserId(info!) };
  }

  /**
   * Creates a token for whoever is asking. A token can only mint tokens that hold no scope it
   * lacks (without `scopes`, the new one gets exactly its own) and that expire no later than
   * itself, so a stolen short-lived token cannot turn into a long-lived or wider one.
   */
  async createFor(
    p: Principal,
    req: { name: string; scopes?: Scope[] | undefined; ttlSeconds?: number | undefined },
  ): Promise<{ token: string; info: TokenInfo }> {
    if (p.via.kind !== 'token') return this.create(p.user, req);
    const scopes = req.scopes ?? [...p.scopes];
    const beyond = scopes.filter((s) => !p.scopes.has(s));
    if (beyond.length) throw errors.forbidden(`this token cannot grant scope ${beyond.join(', ')}`);
    const parent = await this.store.tokens.byId(p.via.tokenId);
    const remaining = parent ? Math.floor((Date.parse(parent.expiresAt) - Date.now()) / 1000) : 0;
    const ttlSeconds = Math.min(req.ttlSeconds ?? this.defaultTtlSeconds, remaining);
    return this.create(p.user, { ...req, scopes, ttlSeconds });
  }

  /** Verifies a presented token and returns who it speaks for; throws a 401 saying why not. */
  async authenticate(token: string): Promise<Principal> {
    let header;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw errors.tokenInvalid('token is malformed');
    }
    if (header.alg !== TOKEN_ALG) {
      throw errors.tokenInvalid(`token algorithm "${String(header.alg)}" is not accepted (corral signs with ${TOKEN_ALG})`);
    }
    let jti: string | undefined;
    try {
      const known = this.verified.get(token);
      if (known && known.expiresMs > Date.now()) jti = known.jti;
      else {
        this.verified.delete(token);
        const { payload } = await jwtVerify(token, this.key.publicKey, { algorithms: [TOKEN_ALG], issuer: ISSUER });
        jti = payload.jti;
        if (payload.exp !== undefined) {
          if (this.verified.size >= VERIFIED_MAX) this.verified.delete(this.verified.keys().next().value!);
          this.verified.set(token, { jti, expiresMs: payload.exp * 1000 });
        }
      }
    } catch (e) {
      if (e instanceof joseErrors.JWTExpired) throw errors.tokenExpired('token has expired');
      if (e instanceof joseErrors.JWSSignatureVerificationFailed) {
        throw errors.tokenInvalid('token signature does not verify (signed by another key, or altered)');
      }
      throw errors.tokenInvalid(`token is invalid: ${(e as Error).message}`);
    }
    const row = jti ? await this.store.tokens.byId(jti) : undefined;
    if (!row) throw errors.tokenInvalid('token is not known to this server');
    if (row.revokedAt) throw errors.tokenRevoked('token has been revoked');
    if (row.pendingCredits > 0) await this.store.ledger.claimTokenCredits(row.id);
    const user = await this.store.users.byId(row.userId);
    if (!user) throw errors.tokenRevoked('token owner no longer exists');
    this.touch(row.id);
    // A role can change after the token was made: it never holds more than the role allows.
    const roleScopes = new Set(scopesForRole(user.role));
    const scopes = new Set(row.scopes.filter((s) => roleScopes.has(s)));
    return { user, scopes, via: { kind: 'token', tokenId: row.id } };
  }

  list(user: User): Promise<TokenInfo[]> {
    return this.store.tokens.listForUser(user.id);
  }

  /** Owners revoke their own tokens; admins any. Another user's token is "not found". */
  async revoke(by: User, id: string): Promise<TokenInfo> {
    const row = await this.store.tokens.byId(id);
    if (!row || (row.userId !== by.id && by.role !== 'admin')) throw errors.tokenNotFound(id);
    await this.store.tokens.revoke(id);
    return stripUserId((await this.store.tokens.byId(id))!);
  }

  private touch(id: string): void {
    const now = Date.now();
    if (now - (this.touched.get(id) ?? 0) < TOUCH_EVERY_MS) return;
    this.touched.set(id, now);
    void this.store.tokens.touch(id, now).catch(() => undefined);
  }
}

function stripUserId(t: TokenInfo & { userId: string; pendingCredits?: number }): TokenInfo {
  const { userId: _, pendingCredits: _credits, ...info } = t;
  return info;
}
