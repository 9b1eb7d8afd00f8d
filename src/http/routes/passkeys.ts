/**
 * Passkeys (core/accounts/passkeys.ts). A signed-in user's own credentials:
 * `GET /passkeys`, `POST /passkeys/registration/options` then `POST /passkeys/registration`
 * (a login session only: the challenge is bound to it), `PATCH|DELETE /passkeys/{id}`.
 * Admins: `GET|DELETE /users/{name}/passkeys` (recovery for a user who lost theirs).
 * Signing in: `POST /passkeys/login/options` (sets the HttpOnly ticket cookie holding the
 * challenge's place) then `POST /passkeys/login`, which sets the session cookie like a
 * password login. Both sign-in calls must come from this site (login CSRF).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { PasskeyInfoSchema, PasskeyName } from '../../core/accounts/passkeys.js';
import { UserName, UserSchema } from '../../core/accounts/index.js';
import type { Corral } from '../../core/corral.js';
import { errors } from '../../core/errors.js';
import { requirePrincipal, requireScope } from '../auth.js';
import { isSameOriginRequest } from '../same-origin.js';
import { setSessionCookie } from '../session-cookie.js';

const TICKET_COOKIE = 'corral_passkey';
const TICKET_PATH = '/api/v1/passkeys/login';

const B64url = (max: number, description?: string) => Type.String({ pattern: '^[A-Za-z0-9_-]+$', maxLength: max, ...(description && { description }) });
const CredentialId = B64url(1400, 'the credential id (base64url)');
/** What the browser's credential says, as base64url strings (web/lib/webauthn.js). */
const credential = <T extends Record<string, import('@sinclair/typebox').TSchema>>(response: T) =>
  Type.Object(
    {
      id: CredentialId,
      rawId: CredentialId,
      type: Type.Literal('public-key'),
      response: Type.Object(response, { additionalProperties: false }),
      authenticatorAttachment: Type.Optional(Type.Union([Type.Literal('platform'), Type.Literal('cross-platform')])),
      clientExtensionResults: Type.Record(Type.String(), Type.Unknown(), { default: {} }),
    },
    { additionalProperties: false },
  );
const RegistrationResponse = credential({
  clientDataJSON: B64url(8192),
  attestationObject: B64url(65536),
  transports: Type.Optional(Type.Array(Type.String({ pattern: '^[a-z-]{1,32}$' }), { maxItems: 8 })),
});
const AuthenticationResponse = credential({
  clientDataJSON: B64url(8192),
  authenticatorData: B64url(8192),
  signature: B64url(2048),
  userHandle: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]*$', maxLength: 128 })),
});

const IdParams = Type.Object({ id: CredentialId });
const Listing = Type.Object({
  passkeys: Type.Array(PasskeyInfoSchema),
  required: Type.Boolean({ description: 'auth.passkeys.require applies to you' }),
  enrolmentOnly: Type.Boolean({ description: 'this session may only register a passkey (a password sign-in when one is required)' }),
});
/** The WebAuthn options, passed to navigator.credentials as they are (after base64url decoding). */
const Options = Type.Object({}, { additionalProperties: true });
const tags = ['passkeys'];

export const passkeyRoutes: FastifyPluginAsyncTypebox<{ corral: Corral }> = async (app, { corral }) => {
  const { accounts, config } = corral;
  const { passkeys } = accounts;

  /** Managing passkeys: a session, or a token allowed to change the account. */
  const owner = (request: FastifyRequest) => (request.principal?.via.kind === 'session' ? requirePrincipal(request) : requireScope(request, 'account:write'));
  /** Registration is bound to a login session (the browser holding the authenticator). */
  const session = (request: FastifyRequest) => {
    const p = requirePrincipal(request);
    if (p.via.kind !== 'session') throw errors.forbidden('a passkey is registered from a login session (the dashboard), not with a token');
    return { user: p.user, sessionHash: p.via.sessionHash };
  };

  app.get('/passkeys', { schema: { summary: 'Your passkeys', tags, response: { 200: Listing } } }, async (request) => {
    const p = owner(request);
    return {
      passkeys: await passkeys.list(p.user),
      required: await passkeys.required(p.user),
      enrolmentOnly: p.via.kind === 'session' && !(await passkeys.sessionIsFull(p.user, p.via.sessionHash)),
    };
  });

  app.post(
    '/passkeys/registration/options',
    { schema: { summary: 'Begin registering a passkey: options for navigator.credentials.create()', tags, response: { 200: Options } } },
    async (request) => {
      const s = session(request);
      return passkeys.registrationOptions(s.user, s.sessionHash);
    },
  );

  app.post(
    '/passkeys/registration',
    {
      schema: {
        summary: 'Finish registering a passkey with the browser\'s answer',
        tags,
        body: Type.Object({ name: Type.Optional(PasskeyName), response: RegistrationResponse }, { additionalProperties: false }),
        response: { 201: PasskeyInfoSchema },
      },
    },
    async (request, reply) => {
      const s = session(request);
      return reply.code(201).send(await passkeys.register(s.user, s.sessionHash, request.body.response, request.body.name));
    },
  );

  app.patch(
    '/passkeys/:id',
    {
      schema: {
        summary: 'Rename one of your passkeys',
        tags,
        params: IdParams,
        body: Type.Object({ name: PasskeyName }, { additionalProperties: false }),
        response: { 200: PasskeyInfoSchema },
      },
    },
    async (request) => passkeys.rename(owner(request).user, request.params.id, request.body.name),
  );

  app.delete('/passkeys/:id', { schema: { summary: 'Remove one of your passkeys', tags, params: IdParams } }, async (request, reply) => {
    await passkeys.delete(owner(request).user, request.params.id);
    return reply.code(204).send();
  });

  const UserParams = Type.Object({ name: UserName });
  app.get(
    '/users/:name/passkeys',
    { schema: { summary: "A user's passkeys (admins)", tags, params: UserParams, response: { 200: Type.Object({ passkeys: Type.Array(PasskeyInfoSchema) }) } } },
    async (request) => {
      requireScope(request, 'admin:read');
      return { passkeys: await passkeys.list(await accounts.users.get(request.params.name)) };
    },
  );

  app.delete(
    '/users/:name/passkeys',
    { schema: { summary: "Remove every passkey of a user who lost theirs (admins)", tags, params: UserParams, response: { 200: Type.Object({ removed: Type.Integer() }) } } },
    async (request) => {
      requireScope(request, 'admin:write');
      return { removed: await passkeys.removeAll(await accounts.users.get(request.params.name)) };
    },
  );

  app.post(
    '/passkeys/login/options',
    { schema: { summary: 'Begin signing in with a passkey: options for navigator.credentials.get()', tags, response: { 200: Options } }, config: { csrf: false } },
    async (request, reply) => {
      if (!isSameOriginRequest(request, config.publicUrl)) throw errors.forbidden('a sign-in must begin on this site (login CSRF)');
      const { options, ticket } = await passkeys.loginOptions();
      void reply.setCookie(TICKET_COOKIE, ticket, { path: TICKET_PATH, httpOnly: true, sameSite: 'strict', secure: !!config.tls, maxAge: 300 });
      return reply.header('cache-control', 'no-store').send(options);
    },
  );

  app.post(
    '/passkeys/login',
    {
      schema: {
        summary: 'Sign in with a passkey; sets the session cookie',
        tags,
        body: Type.Object({ response: AuthenticationResponse }, { additionalProperties: false }),
        response: { 200: Type.Object({ user: UserSchema, csrfToken: Type.String() }) },
      },
      config: { csrf: false },
    },
    async (request, reply) => {
      if (!isSameOriginRequest(request, config.publicUrl)) throw errors.forbidden('a sign-in must be posted from this site (login CSRF)');
      const ticket = request.cookies[TICKET_COOKIE];
      void reply.clearCookie(TICKET_COOKIE, { path: TICKET_PATH });
      const user = await passkeys.login(ticket, request.body.response, request.ip);
      const { cookieValue, csrfToken, idHash } = await accounts.sessions.create(user);
      await passkeys.markSession(idHash);
      setSessionCookie(reply, config, cookieValue);
      return reply.header('cache-control', 'no-store').send({ user, csrfToken });
    },
  );
};
