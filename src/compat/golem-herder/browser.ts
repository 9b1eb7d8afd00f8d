/**
 * golem-herder is called from web pages on other origins (the bootstrap script, golem code
 * spawning minions), so like the old herder it answers CORS: any origin, no credentials. In
 * return it takes tokens only: the dashboard's session cookie is ignored here, so another
 * site cannot make a signed-in browser spawn or kill anything with a plain GET.
 */
import type { FastifyInstance } from 'fastify';

export function browserAccess(app: FastifyInstance): void {
  app.addHook('onRequest', async (request, reply) => {
    if (request.principal?.via.kind === 'session') request.principal = null;
    reply.header('access-control-allow-origin', '*');
  });
  app.options('/*', { schema: { hide: true } }, async (_request, reply) =>
    reply
      .code(204)
      .header('access-control-allow-methods', 'GET, POST, PUT, DELETE')
      .header('access-control-allow-headers', 'authorization, content-type')
      .header('access-control-max-age', '600')
      .send(),
  );
}
