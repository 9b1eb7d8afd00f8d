/**
 * Live resource charts: the CPU and memory samples the sampler keeps (core/instances/stats.ts)
 * — per instance for whoever may see the instance, and server-wide for admins. The newest
 * sample also goes out on the events stream (`event: stats`, instances/streams.ts).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Corral } from '../../core/corral.js';
import { ServerSampleSchema, StatsSampleSchema } from '../../core/instances/stats.js';
import { requireScope } from '../auth.js';
import { ErrorBody } from '../errors.js';

const Since = Type.Object(
  { since: Type.Optional(Type.Integer({ minimum: 0, description: 'only samples after this time (ms since the epoch)' })) },
  { additionalProperties: false },
);
const Every = {
  intervalSeconds: Type.Number({ description: 'time between samples' }),
  keepSeconds: Type.Integer({ description: 'how far back samples go' }),
};

export const statsRoutes: FastifyPluginAsyncTypebox<{ corral: Corral }> = async (app, { corral }) => {
  const { intervalSeconds, keepSeconds } = corral.config.instances.stats;
  const defaults = corral.config.instances.defaultLimits;

  app.get(
    '/instances/:id/stats',
    {
      schema: {
        summary: "CPU and memory of an instance over the last hour (while it ran), from its cgroup or container",
        tags: ['instances'],
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 200, description: 'instance id, name, or owner:name' }) }),
        querystring: Since,
        response: {
          200: Type.Object({
            id: Type.String(),
            name: Type.String(),
            state: Type.String(),
            ...Every,
            memoryLimitBytes: Type.Number(),
            cpuLimit: Type.Number({ description: 'cores; 100 % per core' }),
            samples: Type.Array(StatsSampleSchema),
          }),
          400: ErrorBody,
          404: ErrorBody,
        },
      },
    },
    async (request) => {
      const r = await corral.instances.service.find(requireScope(request, 'instances:read').user, request.params.id);
      return {
        id: r.id,
        name: r.name,
        state: r.state,
        intervalSeconds,
        keepSeconds,
        memoryLimitBytes: r.spec.limits?.memoryBytes ?? defaults.memoryBytes,
        cpuLimit: r.spec.limits?.cpus ?? defaults.cpus,
        samples: corral.stats.of(r.id, request.query.since),
      };
    },
  );

  app.get(
    '/stats',
    {
      schema: {
        summary: "Admins: the whole server over the last hour — its instances' sums, corral's own process, the host",
        tags: ['admin'],
        querystring: Since,
        response: { 200: Type.Object({ ...Every, samples: Type.Array(ServerSampleSchema) }), 400: ErrorBody, 403: ErrorBody },
      },
    },
    async (request) => {
      requireScope(request, 'admin:read');
      return { intervalSeconds, keepSeconds, samples: corral.stats.ofServer(request.query.since) };
    },
  );
};
