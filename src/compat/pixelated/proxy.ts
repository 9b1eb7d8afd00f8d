/** Placeholder: the pixelatedProxy adapter (being written). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { CompatPluginOptions } from '../index.js';

export const pixelatedProxy: FastifyPluginAsyncTypebox<CompatPluginOptions<'pixelatedProxy'>> = async () => {};
