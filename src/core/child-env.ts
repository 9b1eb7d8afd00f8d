/**
 * The environment of every process corral starts itself (the spawn host, sandboxes' bwrap,
 * `cp`, version probes, `--version` checks): a fixed, minimal list, never the server's own.
 *
 * The server's environment holds its secrets (CORRAL_ADMIN_PASSWORD, CORRAL_DATABASE_URL,
 * cloud credentials…), and a child keeps the environment it was started with for life,
 * readable by anyone who can read its /proc/PID/environ: a job reading the environ of its
 * sandbox's pid 1 (bwrap) got the admin password. So nothing is copied from process.env:
 *
 *  - PATH is a fixed list of system dirs (the children are system tools, started by absolute
 *    path where it matters); the server's PATH may name a user's own dirs;
 *  - LANG=C.UTF-8 so tools print UTF-8 and parse the same way on every machine;
 *  - HOME=/nonexistent, as Debian gives system users: no dotfile of the server's user is read.
 *
 * A workload's own environment (its spec's env, a job's PATH/HOME/TMPDIR) is set on top of
 * this by whoever starts it; inside bwrap `--clearenv` then leaves only that.
 */

/** PATH of corral's own children (not of workloads, whose spec sets theirs). */
export const CHILD_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export type ChildEnv = Readonly<Record<string, string>>;

/** The base environment, with `extra` (explicit values only) on top. */
export function childEnv(extra: Record<string, string> = {}): ChildEnv {
  return { PATH: CHILD_PATH, LANG: 'C.UTF-8', HOME: '/nonexistent', ...extra };
}
