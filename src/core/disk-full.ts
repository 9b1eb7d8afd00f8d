/**
 * Whether an error means the disk is full: ENOSPC from the file system (an upload, a log, the
 * SQLite file through the OS), SQLite's SQLITE_FULL, or PostgreSQL's disk_full (53100). The
 * http layer answers these with 507 `disk_full` wherever in a request they happen, and
 * /readyz fails while the store cannot write.
 */
const DISK_FULL_CODES: ReadonlySet<unknown> = new Set(['ENOSPC', 'EDQUOT', 'SQLITE_FULL', '53100']);

export function isDiskFull(e: unknown): boolean {
  for (let cause = e, depth = 0; cause && typeof cause === 'object' && depth < 5; cause = (cause as { cause?: unknown }).cause, depth++) {
    if (DISK_FULL_CODES.has((cause as { code?: unknown }).code)) return true;
  }
  return false;
}
