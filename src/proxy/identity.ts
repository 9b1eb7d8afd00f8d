/**
 * Who a proxied request speaks for, checked cheaply: the cookie (the main session's for
 * routes on the main listener, an instance host's own on instance hosts) or the token
 * (`Authorization: Bearer`, or `?token=`) is looked up once and trusted for `authCacheMs`,
 * so a burst of requests costs one store lookup. Long-lived WebSockets re-check with
 * `fresh()`, which bypasses the cache.
 */
import type { IncomingMessage } from 'node:http';
import { SESSION_COOKIE, type Accounts, type Principal } from '../core/accounts/index.js';
import { HOST_COOKIE, type HostLogin } from './host-login.js';
import { queryToken } from './route.js';

/** The credential a request presents, and where it came from (so it is never forwarded). */
export interface Credential {
  /** session: the main session cookie; host: an instance host's cookie, good on `host` only. */
  kind: 'session' | 'token' | 'host';
  value: string;
  /** Where the token was found: the header or the query string. */
  from: 'cookie' | 'header' | 'query';
  /** The host label a host cookie was presented on. */
  host?: string;
}

const COOKIE_PREFIX = `${SESSION_COOKIE}=`;
const HOST_COOKIE_PREFIX = `${HOST_COOKIE}=`;

export function presentedToken(req: IncomingMessage, url: string): Credential | undefined {
  const auth = req.headers.authorization;
  if (auth) {
    const m = /^bearer\s+(\S+)\s*$/i.exec(auth);
    if (m) return { kind: 'token', value: m[1]!, from: 'header' };
  }
  const token = queryToken(url);
  return token ? { kind: 'token', value: token, from: 'query' } : undefined;
}

/** On the main listener (path routing, compat adapters): a token or the main session cookie. */
export function presentedCredential(req: IncomingMessage, url: string): Credential | undefined {
  const token = presentedToken(req, url);
  if (token) return token;
  const cookie = req.headers.cookie;
  if (cookie) {
    const value = cookieValue(cookie, COOKIE_PREFIX);
    if (value) return { kind: 'session', value, from: 'cookie' };
  }
  return undefined;
}

/** On an instance host: a token or that host's own cookie, never the main session cookie. */
export function hostCredential(req: IncomingMessage, url: string, host: string): Credential | undefined {
  const token = presentedToken(req, url);
  if (token) return token;
  const cookie = req.headers.cookie;
  const value = cookie ? cookieValue(cookie, HOST_COOKIE_PREFIX) : undefined;
  return value ? { kind: 'host', value, from: 'cookie', host } : undefined;
}

/** The value of one cookie in a Cookie header, without parsing the rest. */
export function cookieValue(header: string, prefix: string): string | undefined {
  let i = header.startsWith(prefix) ? 0 : header.indexOf(`; ${prefix}`);
  if (i < 0) return undefined;
  if (i > 0) i += 2;
  const start = i + prefix.length;
  const end = header.indexOf(';', start);
  const raw = header.slice(start, end < 0 ? undefined : end);
  if (!raw.includes('%')) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined; // a malformed escape is no credential, not a server error
  }
}

interface Cached {
  principal: Principal | undefined;
  until: number;
}

const MAX_CACHED = 50_000;

export class IdentityCache {
  private readonly cache = new Map<string, Cached>();

  constructor(
    private readonly accounts: Accounts,
    private readonly ttlMs: number,
    private readonly hosts?: HostLogin,
  ) {}

  /** The principal behind a credential, or undefined when it is unknown, expired or revoked. */
  async principal(c: Credential): Promise<Principal | undefined> {
    const key = cacheKey(c);
    const hit = this.cache.get(key);
    const now = Date.now();
    if (hit && hit.until > now) return hit.principal;
    const principal = await this.fresh(c);
    if (this.ttlMs > 0) {
      if (this.cache.size >= MAX_CACHED) this.prune(now);
      this.cache.set(key, { principal, until: now + this.ttlMs });
    }
    return principal;
  }

  /** Asks the store, bypassing the cache. */
  async fresh(c: Credential): Promise<Principal | undefined> {
    try {
      if (c.kind === 'host') return c.host !== undefined ? await this.hosts?.authenticate(c.value, c.host) : undefined;
      if (c.kind === 'token') return await this.accounts.tokens.authenticate(c.value);
      const p = await this.accounts.sessions.authenticate(c.value);
      // A password session that may only register a passkey (auth.passkeys.require) reaches no instance.
      return p?.via.kind === 'session' && (await this.accounts.passkeys.sessionIsFull(p.user, p.via.sessionHash)) ? p : undefined;
    } catch {
      return undefined; // invalid, expired or revoked tokens are all "not logged in" here
    }
  }

  /** Forgets a credential at once (the login form's logout). */
  forget(c: Credential): void {
    this.cache.delete(cacheKey(c));
  }

  /** Forgets every host credential of a main session (its logout). */
  forgetHostsOf(sessionHash: string): void {
    for (const [k, v] of this.cache) {
      if (k.startsWith('host:') && v.principal?.via.kind === 'session' && v.principal.via.sessionHash === sessionHash) this.cache.delete(k);
    }
  }

  private prune(now: number): void {
    for (const [k, v] of this.cache) if (v.until <= now) this.cache.delete(k);
    if (this.cache.size >= MAX_CACHED) this.cache.clear();
  }
}

export const cacheKey = (c: Credential): string => (c.kind === 'host' ? `host:${c.host}:${c.value}` : `${c.kind}:${c.value}`);
