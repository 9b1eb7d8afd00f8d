/** Users create, list and revoke their own API tokens. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { ScopeSchema, TokenInfoSchema } from '../../core/accounts/index.js';
import type { Corral } from '../../core/corral.js';
import { requirePrincipal } from '../auth.js';

const tags = ['tokens'];
const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) });

export const tokenRoutes: FastifyPluginAsyncTypebox<{ corral: Corral }> = async (app, { corral }) => {
  const tokens = corral.accounts.tokens;

  app.get(
    '/tokens',
    { schema: { summary: 'List your tokens', tags, response: { 200: Type.Object({ tokens: Type.Array(TokenInfoSchema) }) } } },
    async (request) => ({ tokens: await tokens.list(requirePrincipal(request).user) }),
  );

  app.post(
    '/tokens',
    {
      schema: {
        summary: 'Create a token; the token itself is shown only in this reply',
        tags,
        body: Type.Object(
          {
            name: Type.String({ pattern: '^[A-Za-z0-9_.:@ -]{1,64}$' }),
            scopes: Type.Optional(Type.Array(ScopeSchema, { uniqueItems: true, minItems: 1 })),
            ttlSeconds: Type.Optional(Type.Integer({ minimum: 60, maximum: 10 * 365 * 24 * 3600 })),
          },
          { additionalProperties: false },
        ),
        response: { 201: Type.Object({ token: Type.String(), info: TokenInfoSchema }) },
      },
    },
    async (request, reply) => {
      // A token only mints narrower, shorter-lived tokens: see TokenService.createFor.
      const created = await tokens.createFor(requirePrincipal(request), request.body);
      return reply.code(201).send(created);
    },
  );

  app.delete(
    '/tokens/:id',
    { schema: { summary: 'Revoke a token', tags, params: IdParams, response: { 200: TokenInfoSchema } } },
    async (request) => tokens.revoke(requirePrincipal(request).user, request.params.id),
  );
};
