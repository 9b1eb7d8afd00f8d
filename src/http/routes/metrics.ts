/** `GET /metrics` in Prometheus text format, for a token with the `metrics:read` scope (admins). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Corral } from '../../core/corral.js';
import { requireScope } from '../auth.js';

export const metricsRoutes: FastifyPluginAsyncTypebox<{ corral: Corral }> = async (app, { corral }) => {
  app.get(
    '/metrics',
    {
      schema: {
        summary: 'Prometheus metrics (needs the metrics:read scope)',
        tags: ['metrics'],
        produces: ['text/plain'],
      },
    },
    async (request, reply) => {
      requireScope(request, 'metrics:read');
      const text = await corral.metrics.text();
      return reply.header('content-type', corral.metrics.contentType).header('cache-control', 'no-store').send(text);
    },
  );
};
