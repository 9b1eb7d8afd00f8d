import { createRequire } from 'node:module';

/** corral's version, from package.json (same relative path from src/ and dist/). */
export const VERSION = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
