/**
 * golem-herder tokens are corral tokens: made for the email's user (owners.ts) with the
 * scopes daemons, minions and the proxy need, carrying the credits that top up that user
 * once, on first use (src/core/credits), at most `maxTokenCredits`. `POST /token/v1/generate`
 * needs the token password, guessed at no faster than a login (the same throttle);
 * `GET /token/v1/inspect/{token}` shows the email and its balance.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { timingSafeEqual, createHash } from 'node:crypto';
import type { Scope } from '../../core/accounts/index.js';
import type { Corral } from '../../core/corral.js';
import { errors, isCorralError } from '../../core/errors.js';
import type { CompatPluginOptions } from '../index.js';
import { checkFields, formFields, onlyFields } from './forms.js';
import { emailOfTokenName, tokenNameFor, userForEmail } from './owners.js';

export const GOLEM_TOKEN_SCOPES: Scope[] = ['instances:read', 'instances:write', 'jobs:read', 'jobs:write', 'proxy:read', 'proxy:write'];

export const TokenReplySchema = Type.Object({ token: Type.String(), email: Type.String(), credits: Type.Number() });

export const GenerateFields = Type.Object(
  {
    email: Type.String({ minLength: 1, maxLength: 254, pattern: '^[^\\x00-\\x1f\\x7f]+$' }),
    credits: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000_000 })),
  },
  { additionalProperties: false },
);

type Settings = CompatPluginOptions<'golemHerder'>['settings'];

/** A token for `email` carrying `credits` (what POST /token/v1/generate and `corral token -e` make). */
export async function generateToken(corral: Corral, settings: Settings, email: string, asked?: number) {
  // Credits asked for beyond the cap are refused rather than clamped: an old client shows the
  // error, where a smaller balance than it asked for would surprise it later. The default is
  // the config's own, held to the cap.
  const credits = asked ?? Math.min(settings.defaultCredits, settings.maxTokenCredits);
  if (credits > settings.maxTokenCredits) {
    throw errors.validation(`credits: at most ${settings.maxTokenCredits} (compat.golemHerder.maxTokenCredits)`, {
      details: { field: 'credits', limit: settings.maxTokenCredits },
    });
  }
  const user = await userForEmail(corral, email);
  const { token } = await corral.accounts.tokens.create(user, {
    name: tokenNameFor(email),
    scopes: GOLEM_TOKEN_SCOPES,
    ttlSeconds: settings.tokenTtlSeconds,
    credits,
  });
  return { token, email, credits };
}

/** The token's email and that email's balance now; 404 for anything but a valid golem-herder token. */
export async function inspectToken(corral: Corral, token: string) {
  const notFound = () => errors.notFound('no such token');
  let principal;
  try {
    principal = await corral.accounts.tokens.authenticate(token);
  } catch (e) {
    if (isCorralError(e) && e.status === 401) throw notFound();
    throw e;
  }
  if (principal.via.kind !== 'token') throw notFound();
  const info = (await corral.accounts.tokens.list(principal.user)).find((t) => t.id === (principal.via as { tokenId: string }).tokenId);
  const email = info && emailOfTokenName(info.name);
  if (email === undefined) throw notFound();
  // Read after authenticate: the token's own credits are claimed on its first use.
  const user = await corral.accounts.users.get(principal.user.name);
  return { token, email, credits: user.credits };
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** What the login throttle counts guesses at the token password under (no user name has a ':'). */
export const TOKEN_PASSWORD_SUBJECT = 'golem-herder:token-password';

export const tokenRoutes: FastifyPluginAsyncTypebox<CompatPluginOptions<'golemHerder'>> = async (app, { corral, settings }) => {
  app.post(
    '/token/v1/generate',
    { schema: { summary: 'golem-herder: a token for an email, with credits (needs the token password)', tags: ['golem-herder'] } },
    async (request) => {
      if (!settings.tokenPassword) throw errors.methodNotAllowed('token generation is off: no compat.golemHerder.tokenPassword is configured');
      const expected = digest(settings.tokenPassword);
      const fields = formFields(request);
      const password = fields.password;
      if (typeof password !== 'string') throw errors.badCredentials('wrong token password');
      // Compared as digests: equal length, constant time, whatever was sent.
      const ok = await corral.accounts.throttle.attempt(TOKEN_PASSWORD_SUBJECT, request.ip, async () => timingSafeEqual(digest(password), expected));
      if (!ok) throw errors.badCredentials('wrong token password');
      onlyFields(fields, ['email', 'credits', 'password']);
      const { email, credits } = checkFields(GenerateFields, fields);
      return generateToken(corral, settings, email, credits);
    },
  );

  // A wildcard, not a :param: tokens are longer than the router's parameter length limit.
  app.get(
    '/token/v1/inspect/*',
    {
      schema: {
        summary: 'golem-herder: the email a token speaks for and its credits',
        tags: ['golem-herder'],
        params: Type.Object({ '*': Type.String({ minLength: 1, maxLength: 4096, pattern: '^[A-Za-z0-9_.=-]+$' }) }),
        response: { 200: TokenReplySchema },
      },
    },
    async (request) => inspectToken(corral, request.params['*']),
  );
};
