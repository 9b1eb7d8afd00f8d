/** Where an instance keeps its files: `<data>/instances/<id>/{data,source,logs}`, all private. */
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';

export interface InstanceDirs {
  root: string;
  /** The workload's private writable dir (mode 0700), kept across restarts. */
  data: string;
  /** The unpacked source of a Procfile app. */
  source: string;
  logs: string;
}

export function instanceDirs(dataRoot: string, id: string): InstanceDirs {
  const root = path.join(dataRoot, 'instances', id);
  return { root, data: path.join(root, 'data'), source: path.join(root, 'source'), logs: path.join(root, 'logs') };
}

/** Two calls, not one per level: a create makes them on the way to running, and every call counted at 5,000 instances. */
export async function createInstanceDirs(dirs: InstanceDirs): Promise<void> {
  // `recursive` gives every directory it makes (instances/, the root) the same 0700.
  await mkdir(dirs.data, { recursive: true, mode: 0o700 });
  await mkdir(dirs.logs, { mode: 0o700 }).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'EEXIST') throw e;
  });
}

export async function removeInstanceDirs(dirs: InstanceDirs): Promise<void> {
  await rm(dirs.root, { recursive: true, force: true });
}
