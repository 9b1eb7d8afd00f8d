/**
 * The browser's front door: the login form (`/login`), the logout form (`POST /logout`) and
 * `/`, which sends a logged-in user to their default instance (pixelated-dispatcher's
 * model: log in, land in your app) or to the dashboard. The login form is protected by a
 * double-submit cookie; logout by the session's own CSRF token; both are no-store.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyReply } from 'fastify';
import { LoginName, SESSION_COOKIE } from '../../core/accounts/index.js';
import type { OidcSignIn } from '../../core/accounts/oidc.js';
import type { Corral } from '../../core/corral.js';
import { isCorralError } from '../../core/errors.js';
import { loginFormPage } from '../../proxy/pages.js';
import type { Proxy } from '../../proxy/proxy.js';
import { isSameOriginRequest } from '../same-origin.js';
import { oidcRoutes } from './oidc.js';
import { clearSessionCookie, setSessionCookie } from '../session-cookie.js';

const CSRF_COOKIE = 'corral_csrf';

const LoginForm = Type.Object(
  {
    // The names POST /api/v1/login takes (a directory's may be long), no more.
    name: LoginName,
    password: Type.String({ maxLength: 1024 }),
    _csrf: Type.String({ maxLength: 128 }),
    next: Type.Optional(Type.String({ maxLength: 4096 })),
  },
  { additionalProperties: false },
);
const NextQuery = Type.Object({ next: Type.Optional(Type.String({ maxLength: 4096 })) }, { additionalProperties: true });

/**
 * `next` kept only when it stays on this site: a path (not `//host`, not `/\host`, no control
 * characters browsers would strip), or an instance host under the apps domain (its host name).
 */
export function safeNext(next: string | undefined, appsHostname?: string): string {
  if (!next || /[\u0000-\u001f\u007f\\]/.test(next)) return '/';
  if (next.startsWith('/') && !next.startsWith('//')) return next;
  if (appsHostname) {
    try {
      const u = new URL(next);
      const host = u.hostname.toLowerCase();
      if ((u.protocol === 'http:' || u.protocol === 'https:') && host.endsWith(`.${appsHostname}`) && !u.username && !u.password) return u.href;
    } catch {
      /* not a URL */
    }
  }
  return '/';
}

export const loginRoutes: FastifyPluginAsyncTypebox<{ corral: Corral; proxy: Proxy }> = async (app, { corral, proxy }) => {
  const { accounts, config } = corral;
  const secure = !!config.tls;
  const baseDomain = proxy.origins.appsHostname;

  const renderLogin = (reply: FastifyReply, next: string, error?: string, status = 200) => {
    const csrf = randomBytes(24).toString('base64url');
    void reply.setCookie(CSRF_COOKIE, csrf, { path: '/login', httpOnly: true, sameSite: 'strict', secure });
    return reply
      .code(status)
      .header('cache-control', 'no-store')
      .type('text/html; charset=utf-8')
      // The form also serves the LDAP directory's users (auth.ldap) when local passwords are off.
      .send(loginPage(csrf, next, error, signIn, config.auth.localPasswords || !!config.auth.ldap, accounts.passkeys.enabled));
  };
  // The identity providers' buttons and callbacks (routes/oidc.ts).
  const signIn = oidcRoutes(app, { corral, proxy, renderLogin, safeNext: (n) => safeNext(n, baseDomain) });

  app.get('/login', { schema: { hide: true, querystring: NextQuery } }, async (request, reply) => {
    const next = safeNext(request.query.next, baseDomain);
    if (request.principal) return reply.header('cache-control', 'no-store').redirect(next, 302);
    return renderLogin(reply, next);
  });

  app.post('/login', { schema: { hide: true, body: LoginForm }, config: { csrf: false } }, async (request, reply) => {
    const { name, password, _csrf } = request.body;
    const next = safeNext(request.body.next, baseDomain);
    // Login CSRF: the double-submit cookie alone is not enough against a page on an instance
    // host, which may be able to set cookies for the whole base domain.
    if (!isSameOriginRequest(request, config.publicUrl)) return renderLogin(reply, next, 'This form must be sent from this site.', 403);
    const cookieCsrf = request.cookies[CSRF_COOKIE];
    if (!cookieCsrf || cookieCsrf !== _csrf) return renderLogin(reply, next, 'The form expired; please try again.', 403);
    try {
      const user = await accounts.users.verifyLogin(name, password, request.ip);
      // auth.passkeys.require: refused once they have a passkey; else a session to register one,
      // which goes to the account page (anywhere else would answer passkey_required).
      const { enrolmentOnly } = await accounts.passkeys.passwordSignIn(user);
      const { cookieValue } = await accounts.sessions.create(user);
      void reply.clearCookie(CSRF_COOKIE, { path: '/login' });
      setSessionCookie(reply, config, cookieValue);
      return reply.header('cache-control', 'no-store').redirect(enrolmentOnly ? '/ui/#/account' : next, 302);
    } catch (e) {
      if (!isCorralError(e)) throw e;
      if (e.status === 429) void reply.header('retry-after', e.headers['retry-after'] ?? '60');
      // A lock-out, a refusal (passkey required, the LDAP directory's rules) or a directory that
      // is down say why; a wrong password says no more than that.
      return renderLogin(reply, next, e.status === 401 ? 'Invalid credentials' : e.message, e.status);
    }
  });

  // The session's CSRF token is checked by the auth plugin (form field `_csrf`).
  app.post('/logout', { schema: { hide: true } }, async (request, reply) => {
    const p = request.principal;
    if (p?.via.kind === 'session') {
      await accounts.sessions.destroy(p.via.sessionHash);
      const value = request.cookies[SESSION_COOKIE];
      if (value) proxy.revoke({ kind: 'session', value, from: 'cookie' });
    }
    clearSessionCookie(reply, config);
    return reply.header('cache-control', 'no-store').redirect('/login', 303);
  });

  // The smartmob-agent adapter may own `/` for API clients; browsers only get here if not.
  if (!app.hasRoute({ method: 'GET', url: '/' })) {
    app.get('/', { schema: { hide: true } }, async (request, reply) => {
      void reply.header('cache-control', 'no-store');
      const p = request.principal;
      if (!p) return reply.redirect('/login', 302);
      const d = await corral.store.proxy.defaultFor(p.user.id);
      return reply.redirect((d && proxy.origins.appUrl(d.ownerName, d.instanceName)) ?? '/ui/', 302);
    });
  }
};

function loginPage(csrf: string, next: string, error: string | undefined, signIn: OidcSignIn, localPasswords: boolean, passkeys: boolean): string {
  const q = next === '/' ? '' : `?next=${encodeURIComponent(next)}`;
  return loginFormPage({
    links: signIn.list().map((p) => ({ href: `/login/oidc/${encodeURIComponent(p.id)}${q}`, label: p.label })),
    passwordForm: localPasswords,
    passkeyNext: passkeys ? next : undefined,
    title: 'Log in · corral',
    heading: 'corral',
    action: '/login',
    userField: 'name',
    hidden: { _csrf: csrf, next },
    error,
    stylesheet: '/ui/style.css',
  });
}
