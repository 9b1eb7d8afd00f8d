/** Placeholder: the smartmobAgent adapter (being written). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { CompatPluginOptions } from '../index.js';

export const smartmobAgent: FastifyPluginAsyncTypebox<CompatPluginOptions<'smartmobAgent'>> = async () => {};
