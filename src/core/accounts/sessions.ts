/**
 * Login sessions, kept server-side. The cookie holds a random id; the store keeps only its
 * SHA-256, so a copy of the database yields no session. Each session carries a CSRF token
 * that state-changing requests authenticated by the cookie must echo.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Store } from '../../store/index.js';
import { scopesForRole } from './scopes.js';
import type { Principal, User } from './types.js';

export const SESSION_COOKIE = 'corral_session';

const sha256 = (s: string) => createHash('sha256').update(s).digest('base64url');
const randomId = () => randomBytes(32).toString('base64url');

export class SessionService {
  constructor(
    private readonly store: Store,
    private readonly ttlSeconds: number,
  ) {}

  /** A new session; `idHash` names it in the store (what a passkey sign-in marks). */
  async create(user: User): Promise<{ cookieValue: string; csrfToken: string; idHash: string }> {
    const cookieValue = randomId();
    const csrfToken = randomId();
    const now = Date.now();
    // Expired sessions are otherwise only removed when presented: sweep them at each login.
    await this.store.sessions.deleteExpired(now);
    await this.store.sessions.insert({
      id_hash: sha256(cookieValue),
      user_id: user.id,
      csrf_token: csrfToken,
      created_at: now,
      expires_at: now + this.ttlSeconds * 1000,
    });
    return { cookieValue, csrfToken, idHash: sha256(cookieValue) };
  }

  /** The principal behind a cookie, or undefined when the session is unknown or expired. */
  async authenticate(cookieValue: string): Promise<Principal | undefined> {
    const idHash = sha256(cookieValue);
    const row = await this.store.sessions.byHash(idHash);
    const now = Date.now();
    if (!row) return undefined;
    if (Number(row.expires_at) < now) {
      await this.store.sessions.delete(idHash);
      return undefined;
    }
    const user = await this.store.users.byId(row.user_id);
    if (!user) return undefined;
    // Sliding expiry, written at most once a minute per session.
    const fresh = now + this.ttlSeconds * 1000;
    if (fresh - Number(row.expires_at) > 60_000) await this.store.sessions.extend(idHash, fresh);
    return {
      user,
      scopes: new Set(scopesForRole(user.role)),
      via: { kind: 'session', sessionHash: idHash, csrfToken: row.csrf_token },
    };
  }

  destroy(sessionHash: string): Promise<void> {
    return this.store.sessions.delete(sessionHash);
  }

  destroyAllFor(userId: string): Promise<void> {
    return this.store.sessions.deleteForUser(userId);
  }
}
