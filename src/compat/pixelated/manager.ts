/** Placeholder: the pixelatedManager adapter (being written). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { CompatPluginOptions } from '../index.js';

export const pixelatedManager: FastifyPluginAsyncTypebox<CompatPluginOptions<'pixelatedManager'>> = async () => {};
