/**
 * The tiny shell prefix every workload is spawned through. Node cannot run code between fork
 * and exec, so a POSIX sh does it: write its own pid into each cgroup's procs file (before the
 * workload exists, so nothing it forks can escape the limits), set rlimits, optionally ask the
 * kernel to SIGKILL it when the server dies (only needed without bwrap, which has
 * --die-with-parent), then exec the real argv (usually bwrap's). Costs one dash exec (~1 ms).
 *
 *   spawn(...launchArgv({ procsFiles: cg.procsFiles, rlimits: { openFiles: 256 } }, sandboxArgv(s)))
 */

export interface Rlimits {
  /** Largest file the workload may write (RLIMIT_FSIZE). */
  fileSizeBytes?: number;
  /** Open file descriptors (RLIMIT_NOFILE). */
  openFiles?: number;
  /** Core dumps are off unless this is set (RLIMIT_CORE). */
  coreBytes?: number;
}

export interface LaunchOptions {
  /** cgroup.procs (v2) or per-controller cgroup.procs (v1) files to join; see cgroups.ts. */
  procsFiles?: string[];
  rlimits?: Rlimits;
  /** Path of setpriv, to set PR_SET_PDEATHSIG=SIGKILL on the workload (unsandboxed mode). */
  setpriv?: string;
}

/** Exit code of the launcher itself when it cannot join a cgroup. */
export const LAUNCH_FAILED_EXIT = 125;

// "$@" is: core blocks, nofile|-, fsize blocks|-, procs files…, '--', argv…. `for f` expands
// "$@" once, so shifting inside the loop is safe. Limits travel as arguments, not env, so
// nothing leaks into an unsandboxed workload's environment.
const SCRIPT = [
  'c=$1 n=$2 fz=$3; shift 3',
  `for f; do shift; [ "$f" = -- ] && break; echo $$ > "$f" || exit ${LAUNCH_FAILED_EXIT}; done`,
  'ulimit -c "$c"',
  '[ "$n" = - ] || ulimit -n "$n"',
  '[ "$fz" = - ] || ulimit -f "$fz"',
  'exec "$@"',
].join('\n');

/** The full argv: ['/bin/sh', '-c', script, name, limits…, procsFiles…, '--', (setpriv …), argv…]. */
export function launchArgv(opts: LaunchOptions, argv: string[]): string[] {
  const r = opts.rlimits ?? {};
  const limits = [
    String(Math.floor((r.coreBytes ?? 0) / 512)),
    r.openFiles ? String(r.openFiles) : '-',
    // sh's ulimit -f counts 512-byte blocks.
    r.fileSizeBytes ? String(Math.max(1, Math.floor(r.fileSizeBytes / 512))) : '-',
  ];
  const deathSig = opts.setpriv ? [opts.setpriv, '--pdeathsig', 'KILL', '--'] : [];
  return ['/bin/sh', '-c', SCRIPT, 'corral-launch', ...limits, ...(opts.procsFiles ?? []), '--', ...deathSig, ...argv];
}
