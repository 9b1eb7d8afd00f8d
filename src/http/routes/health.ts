import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Corral } from '../../core/corral.js';
import { errors } from '../../core/errors.js';

/** Liveness (the process answers) and readiness (the database answers). */
export const healthRoutes: FastifyPluginAsyncTypebox<{ corral: Corral }> = async (app, { corral }) => {
  const Status = Type.Object({ status: Type.String() });
  app.get('/healthz', { schema: { hide: true, response: { 200: Status } } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { hide: true, response: { 200: Status } } }, async () => {
    await corral.store.ping().catch(() => {
      throw errors.driverUnavailable('not ready: the database does not answer');
    });
    return { status: 'ready' };
  });
};
