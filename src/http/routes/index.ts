import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { VERSION } from '../../core/version.js';

/** Links to what the API offers: its entry point for people and clients alike. */
export const indexRoutes: FastifyPluginAsyncTypebox<{ links: Record<string, string> }> = async (app, { links }) => {
  app.get(
    '/',
    {
      schema: {
        summary: 'Index of the API',
        tags: ['index'],
        response: {
          200: Type.Object({ name: Type.String(), version: Type.String(), links: Type.Record(Type.String(), Type.String()) }),
        },
      },
    },
    async () => ({ name: 'corral', version: VERSION, links }),
  );
};
