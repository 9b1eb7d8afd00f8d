/**
 * Where jobs' work dirs live.
 *
 * `memory` (the default) puts them on a tmpfs (/dev/shm). A job creates and removes a few
 * dirs and files; on ext4 after many thousands of deletions, allocating an inode scans
 * "recently deleted" ones and cost the server ~40% of its CPU at full job load (perf
 * profile in docs/benchmarks.md). On a tmpfs that cost is gone, and what a job writes counts
 * against its own memory limit instead of filling the disk.
 *
 * `disk` keeps them in the data dir (for jobs writing more than memory allows).
 */
import { createHash } from 'node:crypto';
import { statfsSync } from 'node:fs';
import path from 'node:path';

export type WorkDirs = 'memory' | 'disk';

const TMPFS_MAGIC = 0x01021994;
const SHM = '/dev/shm';

const isTmpfs = (dir: string): boolean => {
  try {
    return statfsSync(dir).type === TMPFS_MAGIC;
  } catch {
    return false;
  }
};

/**
 * The root under which each job's sandbox gets its dir. On a tmpfs it is named after the
 * data dir, so two servers on one machine never share it and a restarted server finds (and
 * clears) its own leftovers. The runner creates it with mode 0700.
 */
export function jobWorkRoot(dataDir: string, where: WorkDirs, shm = SHM): { root: string; inMemory: boolean } {
  if (where === 'memory' && isTmpfs(shm)) {
    const id = createHash('sha256').update(path.resolve(dataDir)).digest('hex').slice(0, 16);
    return { root: path.join(shm, `corral-jobs-${id}`), inMemory: true };
  }
  return { root: path.join(dataDir, 'jobs'), inMemory: false };
}
