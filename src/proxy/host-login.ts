/**
 * Logging in to an instance host, as OAuth does it: the main origin (where the browser holds
 * the main session) mints a one-time code bound to the user, the main session and one
 * instance host; the browser carries it to `/_corral/callback` on that host, which trades it
 * for a host session and sets the host's own cookie. The main session cookie never reaches
 * an instance host, and a host session is good for its own host only.
 *
 * Codes are random (256 bits), live 60 s and are deleted on first use, whatever the outcome.
 * Host sessions belong to their main session: logging out (or its expiry, or deleting the
 * user) ends them. Only hashes are stored, as for main sessions.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Principal, Scope } from '../core/accounts/index.js';
import type { HostSessionStore } from '../store/host-sessions.js';
import type { UserStore } from '../store/users.js';

/** The cookie of an instance host: host-only, so each host has its own. */
export const HOST_COOKIE = 'corral_host';
/** The reserved path on every instance host that finishes a login. */
export const CALLBACK_PATH = '/_corral/callback';
/** Paths under this prefix on instance hosts are corral's, never the app's. */
export const RESERVED_PREFIX = '/_corral/';
export const CODE_TTL_MS = 60_000;

const sha256 = (s: string) => createHash('sha256').update(s).digest('base64url');
const randomValue = () => randomBytes(32).toString('base64url');
/** A host session lets its holder through the proxy to that host, and nothing else. */
const HOST_SCOPES: ReadonlySet<Scope> = new Set<Scope>(['proxy:read', 'proxy:write']);

export class HostLogin {
  constructor(
    private readonly store: HostSessionStore,
    private readonly users: UserStore,
    private readonly ttlSeconds: number,
  ) {}

  /** A code for `label`, for the user of a main session; `next` is a path on that host. */
  async mintCode(principal: Principal, label: string, next: string): Promise<string> {
    if (principal.via.kind !== 'session') throw new Error('host login codes are minted for main sessions only');
    const code = randomValue();
    const now = Date.now();
    await this.store.deleteExpired(now);
    await this.store.insertCode({
      code_hash: sha256(code),
      session_hash: principal.via.sessionHash,
      user_id: principal.user.id,
      host_label: label,
      next,
      expires_at: now + CODE_TTL_MS,
    });
    return code;
  }

  /** Trades a code presented on `label` for a host session; undefined when it is unknown, used, expired or for another host. */
  async exchange(code: string, label: string): Promise<{ cookieValue: string; next: string; maxAgeSeconds: number } | undefined> {
    const row = await this.store.takeCode(sha256(code));
    const now = Date.now();
    if (!row || Number(row.expires_at) < now || row.host_label !== label) return undefined;
    const cookieValue = randomValue();
    await this.store.insertSession({
      id_hash: sha256(cookieValue),
      session_hash: row.session_hash,
      user_id: row.user_id,
      host_label: label,
      created_at: now,
      expires_at: now + this.ttlSeconds * 1000,
    });
    return { cookieValue, next: row.next, maxAgeSeconds: this.ttlSeconds };
  }

  /** The user behind a host cookie presented on `label`, while it and its main session live. */
  async authenticate(cookieValue: string, label: string): Promise<Principal | undefined> {
    const idHash = sha256(cookieValue);
    const row = await this.store.session(idHash);
    if (!row || row.host_label !== label) return undefined;
    const now = Date.now();
    if (Number(row.expires_at) < now || Number(row.main_expires_at) < now) {
      await this.store.deleteSession(idHash);
      return undefined;
    }
    const user = await this.users.byId(row.user_id);
    if (!user) return undefined;
    return { user, scopes: HOST_SCOPES, via: { kind: 'session', sessionHash: row.session_hash, csrfToken: '' } };
  }

  /** Ends every host session of a main session at once (the logout form). */
  endFor(mainSessionHash: string): Promise<void> {
    return this.store.deleteForMainSession(mainSessionHash);
  }
}

export const mainSessionHash = sha256;
