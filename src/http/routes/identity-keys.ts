/** The public key apps verify X-Corral-Identity with (404 while assertions are off). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { errors } from '../../core/errors.js';
import type { Proxy } from '../../proxy/proxy.js';

export const IDENTITY_JWKS_PATH = '/.well-known/corral-identity.jwks.json';

export const identityKeyRoutes: FastifyPluginAsyncTypebox<{ proxy: Proxy }> = async (app, { proxy }) => {
  app.get(IDENTITY_JWKS_PATH, { schema: { summary: 'Public keys of X-Corral-Identity assertions (JWKS)', tags: ['proxy'] } }, async (_request, reply) => {
    if (!proxy.assertions) throw errors.notFound('identity assertions are off (proxy.identityAssertion.enabled)');
    return reply.header('cache-control', 'public, max-age=300').send(await proxy.assertions.jwks());
  });
};
