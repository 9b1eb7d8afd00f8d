/**
 * `POST /api/v1/golem-herder/tokens` (admin): a golem-herder token for an email, as
 * `/token/v1/generate` makes it but without the token password; what `corral token -e EMAIL
 * -c CREDITS` calls while the server runs (the old herder's CLI needed it stopped).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Corral } from '../../core/corral.js';
import { requireScope } from '../../http/auth.js';
import { GenerateFields, TokenReplySchema, generateToken } from './tokens.js';

export const golemHerderAdminRoutes: FastifyPluginAsyncTypebox<{ corral: Corral }> = async (app, { corral }) => {
  app.post(
    '/golem-herder/tokens',
    {
      schema: {
        summary: 'A golem-herder token for an email, carrying credits for it (admin)',
        tags: ['golem-herder'],
        body: GenerateFields,
        response: { 201: TokenReplySchema },
      },
    },
    async (request, reply) => {
      requireScope(request, 'admin:write');
      const { email, credits } = request.body;
      return reply.code(201).send(await generateToken(corral, corral.config.compat.golemHerder, email, credits));
    },
  );
};
