import { access, constants, mkdir } from 'node:fs/promises';
import { errors } from './errors.js';

/** Creates the data directory (mode 0700) and fails clearly when it cannot be written. */
export async function prepareDataDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await access(dir, constants.W_OK | constants.R_OK | constants.X_OK);
  } catch (e) {
    throw errors.config(`data directory ${dir} is not writable: ${(e as Error).message}`);
  }
}
