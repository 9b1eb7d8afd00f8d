/**
 * OpenID Connect sign-in for browsers: `GET /login/oidc/{id}` sends the browser to the
 * identity provider, `GET /login/oidc/{id}/callback` takes it back (checks in
 * core/accounts/oidc.ts), starts a session as for a password login and goes on to `next`.
 * A refusal is the login page with the reason and nothing created. The binding cookie ties a
 * pending sign-in to the browser that began it (SameSite=Lax: it must come back on the
 * provider's top-level redirect).
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Corral } from '../../core/corral.js';
import { isCorralError } from '../../core/errors.js';
import { OidcSignIn } from '../../core/accounts/oidc.js';
import { Ceremonies } from '../../core/accounts/ceremonies.js';
import type { Proxy } from '../../proxy/proxy.js';
import { setSessionCookie } from '../session-cookie.js';

const BINDING_COOKIE = 'corral_oidc';
const COOKIE_PATH = '/login/oidc';

const Params = Type.Object({ id: Type.String({ maxLength: 32 }) });
const BeginQuery = Type.Object({ next: Type.Optional(Type.String({ maxLength: 4096 })) }, { additionalProperties: true });

export type RenderLogin = (reply: FastifyReply, next: string, error?: string, status?: number) => FastifyReply;

export function oidcRoutes(
  parent: FastifyInstance,
  opts: { corral: Corral; proxy: Proxy; renderLogin: RenderLogin; safeNext: (next: string | undefined) => string },
): OidcSignIn {
  const { corral, proxy, renderLogin, safeNext } = opts;
  const { config } = corral;
  const app = parent.withTypeProvider<TypeBoxTypeProvider>();
  const signIn = new OidcSignIn(config.auth.oidc, corral.accounts.users, new Ceremonies(corral.store.ceremonies), () => proxy.origins.main());
  const secure = !!config.tls;

  app.get('/login/oidc/:id', { schema: { hide: true, params: Params, querystring: BeginQuery } }, async (request, reply) => {
    const next = safeNext(request.query.next);
    try {
      const { url, binding } = await signIn.begin(request.params.id, next);
      void reply.setCookie(BINDING_COOKIE, binding, { path: COOKIE_PATH, httpOnly: true, sameSite: 'lax', secure, maxAge: 600 });
      return reply.header('cache-control', 'no-store').redirect(url, 302);
    } catch (e) {
      if (!isCorralError(e)) throw e;
      return renderLogin(reply, next, e.message, e.status);
    }
  });

  app.get('/login/oidc/:id/callback', { schema: { hide: true, params: Params } }, async (request, reply) => {
    try {
      const { user, next } = await signIn.finish(request.params.id, request.url, request.cookies[BINDING_COOKIE]);
      const { cookieValue } = await corral.accounts.sessions.create(user);
      void reply.clearCookie(BINDING_COOKIE, { path: COOKIE_PATH });
      setSessionCookie(reply, config, cookieValue);
      return reply.header('cache-control', 'no-store').redirect(next, 302);
    } catch (e) {
      if (!isCorralError(e)) throw e;
      request.log.info({ provider: request.params.id, code: e.code, reason: e.message }, 'oidc sign-in refused');
      return renderLogin(reply, '/', `Sign-in refused: ${e.message}`, e.status);
    }
  });

  return signIn;
}
