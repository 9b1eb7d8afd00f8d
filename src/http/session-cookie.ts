/**
 * The session cookie, set the same way by the API login and the login form: HttpOnly,
 * SameSite=Lax, Secure under TLS, and for the proxy's base domain when one is configured
 * (so instance hosts under it see the session too).
 */
import type { FastifyReply } from 'fastify';
import { SESSION_COOKIE } from '../core/accounts/index.js';
import type { Config } from '../core/config.js';

const cookieDomain = (config: Config) => config.proxy.baseDomain?.replace(/:\d+$/, '');

export function setSessionCookie(reply: FastifyReply, config: Config, value: string): void {
  const domain = cookieDomain(config);
  void reply.setCookie(SESSION_COOKIE, value, {
    path: '/',
    httpOnly: true,
    sameSite: 'lax',
    secure: !!config.tls,
    maxAge: config.auth.sessionTtlSeconds,
    ...(domain && { domain }),
  });
}

export function clearSessionCookie(reply: FastifyReply, config: Config): void {
  const domain = cookieDomain(config);
  void reply.clearCookie(SESSION_COOKIE, { path: '/', ...(domain && { domain }) });
}
