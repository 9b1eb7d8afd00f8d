import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Corral } from '../../core/corral.js';
import { errors } from '../../core/errors.js';
import { Readiness } from '../../core/readiness.js';

/** Liveness (the process answers) and readiness (the database answers and can write; see core/readiness.ts). */
export const healthRoutes: FastifyPluginAsyncTypebox<{ corral: Corral }> = async (app, { corral }) => {
  const Status = Type.Object({ status: Type.String() });
  const readiness = new Readiness(corral.config.data, corral.store);
  app.get('/healthz', { schema: { hide: true, response: { 200: Status } } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { hide: true, response: { 200: Status } } }, async () => {
    const problem = await readiness.problem();
    if (problem) throw errors.notReady(`not ready: ${problem}`);
    return { status: 'ready' };
  });
};
