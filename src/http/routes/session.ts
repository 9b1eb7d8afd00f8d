/** Logging in and out with a password, and who am I. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { LoginName, ScopeSchema, UserSchema, Password } from '../../core/accounts/index.js';
import type { Corral } from '../../core/corral.js';
import { errors } from '../../core/errors.js';
import { requirePrincipal, requireScope } from '../auth.js';
import { isSameOriginRequest } from '../same-origin.js';
import { clearSessionCookie, setSessionCookie } from '../session-cookie.js';

export const LoginBody = Type.Object(
  { name: LoginName, password: Type.String({ maxLength: 1024 }), _csrf: Type.Optional(Type.String()) },
  { additionalProperties: false },
);

const SessionReply = Type.Object({ user: UserSchema, csrfToken: Type.String() });

export const sessionRoutes: FastifyPluginAsyncTypebox<{ corral: Corral }> = async (app, { corral }) => {
  const { accounts, config } = corral;

  app.post(
    '/login',
    {
      schema: {
        summary: 'Log in with a name and password; sets the session cookie',
        tags: ['session'],
        body: LoginBody,
        response: { 200: SessionReply },
      },
      config: { csrf: false },
    },
    async (request, reply) => {
      if (!isSameOriginRequest(request, config.publicUrl)) throw errors.forbidden('a login must be posted from this site (login CSRF)');
      const user = await accounts.users.verifyLogin(request.body.name, request.body.password, request.ip);
      // auth.passkeys.require: refused once they have a passkey; else a session to register one.
      await accounts.passkeys.passwordSignIn(user);
      const { cookieValue, csrfToken } = await accounts.sessions.create(user);
      setSessionCookie(reply, config, cookieValue);
      return { user, csrfToken };
    },
  );

  app.post(
    '/logout',
    { schema: { summary: 'End the current login session', tags: ['session'] } },
    async (request, reply) => {
      const p = request.principal;
      if (p?.via.kind === 'session') await accounts.sessions.destroy(p.via.sessionHash);
      clearSessionCookie(reply, config);
      return reply.code(204).send();
    },
  );

  app.get(
    '/me',
    {
      schema: {
        summary: 'Who the request is authenticated as',
        tags: ['session'],
        response: {
          200: Type.Object({
            user: UserSchema,
            scopes: Type.Array(ScopeSchema),
            via: Type.Union([Type.Literal('session'), Type.Literal('token')]),
            tokenId: Type.Optional(Type.String()),
            csrfToken: Type.Optional(Type.String()),
          }),
        },
      },
    },
    async (request) => {
      const p = requirePrincipal(request);
      return {
        user: p.user,
        scopes: [...p.scopes],
        via: p.via.kind,
        ...(p.via.kind === 'token' ? { tokenId: p.via.tokenId } : { csrfToken: p.via.csrfToken }),
      };
    },
  );

  app.put(
    '/me/password',
    {
      schema: {
        summary: 'Change your own password (a session, or a token with account:write); ends your other sessions and tokens',
        tags: ['session'],
        body: Type.Object({ current: Type.String({ maxLength: 1024 }), password: Password }, { additionalProperties: false }),
      },
    },
    async (request, reply) => {
      // A token made for jobs or instances must not be able to take the account over.
      const p = request.principal?.via.kind === 'session' ? requirePrincipal(request) : requireScope(request, 'account:write');
      await accounts.users.changeOwnPassword(p.user, request.body.current, request.body.password, { address: request.ip, via: p.via });
      return reply.code(204).send();
    },
  );
};
