/**
 * Authentication for every request: a token (`Authorization: Bearer …`, any case, or
 * `?token=…`) or the session cookie. Routes ask for what they need with `requireScope`.
 * Requests authenticated by cookie that change state must echo the session's CSRF token
 * in `X-CSRF-Token` (or a `_csrf` form field), and, like WebSocket upgrades (which CORS
 * does not cover), must not come from a page of another origin: instance hosts are the
 * same site as the main origin, so their pages' requests carry the cookie (SameSite=Lax).
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { hasScope, SESSION_COOKIE, type Principal, type Scope } from '../core/accounts/index.js';
import type { Corral } from '../core/corral.js';
import { errors } from '../core/errors.js';
import { isSameOriginRequest } from './same-origin.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The token a request presents, from the Authorization header or the query. */
export function presentedToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header) {
    const m = /^bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) throw errors.tokenInvalid('Authorization header must be "Bearer <token>"');
    return m[1];
  }
  const q = (request.query as Record<string, unknown> | undefined)?.token;
  return typeof q === 'string' && q ? q : undefined;
}

export const authPlugin = fp(async (app: FastifyInstance, opts: { corral: Corral }) => {
  const { accounts, config } = opts.corral;
  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (request) => {
    // Routes of an old API with tokens of its own (golem-herder, see src/compat) read them themselves.
    if (request.routeOptions.config?.corralAuth === false) return;
    const token = presentedToken(request);
    if (token) {
      request.principal = await accounts.tokens.authenticate(token);
      return;
    }
    const cookie = request.cookies[SESSION_COOKIE];
    if (cookie) request.principal = (await accounts.sessions.authenticate(cookie)) ?? null;
    const changes = !SAFE_METHODS.has(request.method) || request.headers.upgrade !== undefined;
    if (request.principal?.via.kind === 'session' && changes && !isSameOriginRequest(request, config.publicUrl)) {
      throw errors.forbidden('a page of another origin (an instance host is one) cannot use the session cookie here');
    }
  });
  // CSRF is checked after the body is parsed so a form field can carry it.
  app.addHook('preHandler', async (request) => {
    const p = request.principal;
    if (!p || p.via.kind !== 'session' || SAFE_METHODS.has(request.method)) return;
    if (request.routeOptions.config?.csrf === false) return;
    const sent = request.headers['x-csrf-token'] ?? (request.body as Record<string, unknown> | undefined)?._csrf;
    if (typeof sent !== 'string' || !safeEqual(sent, p.via.csrfToken)) {
      throw errors.csrf('missing or wrong CSRF token: send the X-CSRF-Token header from your login response');
    }
  });
});

declare module 'fastify' {
  interface FastifyContextConfig {
    /** false for routes that need no CSRF token even with a cookie (e.g. logout). */
    csrf?: boolean;
    /** false: corral's tokens and sessions are not read for this route (compat adapters' own tokens). */
    corralAuth?: boolean;
  }
}

/** Compares secrets in constant time. */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The principal of a request that must be authenticated and hold `scope`. */
export function requireScope(request: FastifyRequest, scope: Scope): Principal {
  const p = request.principal;
  if (!p) throw errors.unauthenticated('log in or send a token: Authorization: Bearer <token>');
  if (!hasScope(p.scopes, scope)) throw errors.forbidden(`this needs the "${scope}" scope`);
  return p;
}

/** The principal of a request that must be authenticated, whatever its scopes. */
export function requirePrincipal(request: FastifyRequest): Principal {
  const p = request.principal;
  if (!p) throw errors.unauthenticated('log in or send a token: Authorization: Bearer <token>');
  return p;
}
