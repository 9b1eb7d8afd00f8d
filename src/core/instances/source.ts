/**
 * The source step of a Procfile app, over src/core/sources: fetch the archive (or take the
 * uploaded one), unpack it into the instance's source dir, read the Procfile and pick the
 * spec's process type. An unpacked source is kept, so restarts do not download again.
 */
import type { Config } from '../config.js';
import { errors } from '../errors.js';
import type { PrepareSource } from './supervisor.js';

export function sourcePreparer(_config: Config): PrepareSource {
  return async () => {
    throw errors.badRequest('sources are not available in this build yet');
  };
}
