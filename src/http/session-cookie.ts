/**
 * The session cookie, set the same way by the API login and the login form: HttpOnly,
 * SameSite=Lax, Secure under TLS, and host-only (no Domain attribute), so browsers send it
 * to the main host alone and never to an instance host (those get a cookie of their own,
 * src/proxy/host-login.ts).
 */
import type { FastifyReply } from 'fastify';
import { SESSION_COOKIE } from '../core/accounts/index.js';
import type { Config } from '../core/config.js';

export function setSessionCookie(reply: FastifyReply, config: Config, value: string): void {
  void reply.setCookie(SESSION_COOKIE, value, {
    path: '/',
    httpOnly: true,
    sameSite: 'lax',
    secure: !!config.tls,
    maxAge: config.auth.sessionTtlSeconds,
  });
}

export function clearSessionCookie(reply: FastifyReply, _config: Config): void {
  void reply.clearCookie(SESSION_COOKIE, { path: '/' });
}
