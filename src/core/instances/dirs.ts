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

export async function createInstanceDirs(dirs: InstanceDirs): Promise<void> {
  await mkdir(path.dirname(dirs.root), { recursive: true, mode: 0o700 });
  for (const dir of [dirs.root, dirs.data, dirs.logs]) await mkdir(dir, { recursive: true, mode: 0o700 });
}

export async function removeInstanceDirs(dirs: InstanceDirs): Promise<void> {
  await rm(dirs.root, { recursive: true, force: true });
}
