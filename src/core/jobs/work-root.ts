/**
 * Where jobs' work dirs live.
 *
 * `memory` (the default) puts them on a tmpfs (/dev/shm). A job creates and removes a few
 * dirs and files; on ext4 after many thousands of deletions, allocating an inode scans
 * "recently deleted" ones and cost the server ~40% of its CPU at full job load (perf
 * profile in docs/benchmarks.md). On a tmpfs that cost is gone, and what a job writes counts
 * against its own memory limit instead of filling the disk.
 *
 * `disk` keeps them in the data dir (for jobs writing more than memory allows); so does
 * `memory` when /dev/shm is not a tmpfs with at least 1 GiB free.
 */
import { createHash } from 'node:crypto';
import { statfsSync } from 'node:fs';
import { lstat, rm } from 'node:fs/promises';
import path from 'node:path';

export type WorkDirs = 'memory' | 'disk';

const TMPFS_MAGIC = 0x01021994;
const SHM = '/dev/shm';

/**
 * Below this much free space a tmpfs is too small to share between jobs (Docker gives a
 * container a 64 MiB /dev/shm): the data dir is used instead.
 */
export const MIN_TMPFS_FREE_BYTES = 1024 ** 3;

const roomyTmpfs = (dir: string, minFree: number): boolean => {
  try {
    const st = statfsSync(dir);
    return st.type === TMPFS_MAGIC && st.bavail * st.bsize >= minFree;
  } catch {
    return false;
  }
};

/**
 * The root under which each job's sandbox gets its dir. On a tmpfs it is named after the
 * data dir, so two servers on one machine never share it and a restarted server finds (and
 * clears) its own leftovers. The runner creates it with mode 0700.
 */
export function jobWorkRoot(dataDir: string, where: WorkDirs, shm = SHM, minFree = MIN_TMPFS_FREE_BYTES): { root: string; inMemory: boolean } {
  if (where === 'memory' && roomyTmpfs(shm, minFree)) return { root: memoryRoot(dataDir, shm), inMemory: true };
  return { root: diskRoot(dataDir), inMemory: false };
}

const memoryRoot = (dataDir: string, shm: string) =>
  path.join(shm, `corral-jobs-${createHash('sha256').update(path.resolve(dataDir)).digest('hex').slice(0, 16)}`);
const diskRoot = (dataDir: string) => path.join(dataDir, 'jobs');

/**
 * Removes the job dirs an earlier server of this data dir left behind when it was killed
 * (SIGKILL leaves pre-started sandboxes' and running jobs' dirs): in both places, since
 * jobs.workDirs (or /dev/shm's free space) may have changed since. Only this data dir's own
 * root (by the naming scheme above), and on the shared tmpfs only a real dir owned by this
 * server's user — never a symlink or someone else's. Returns the roots removed.
 */
export async function sweepJobWorkRoots(dataDir: string, shm = SHM): Promise<string[]> {
  const removed: string[] = [];
  for (const [root, shared] of [[memoryRoot(dataDir, shm), true], [diskRoot(dataDir), false]] as const) {
    const st = await lstat(root).catch(() => undefined);
    if (!st?.isDirectory() || (shared && st.uid !== process.getuid?.())) continue;
    await rm(root, { recursive: true, force: true });
    removed.push(root);
  }
  return removed;
}
