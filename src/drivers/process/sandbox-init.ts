/**
 * The init of a job sandbox: a POSIX sh script that runs as the sandbox's pid 1 and forks
 * each step of each job on request (in the spirit of go-judge's container init, which forks
 * each command it is sent inside prepared namespaces — there a Go binary, here dash, so
 * nothing needs compiling on a fresh machine).
 *
 * It speaks lines on fd 3 (a socket pair with the server; never handed to a job):
 *
 *   init → server   ready                 every namespace and mount is in place
 *   server → init   run null|file|fifo [clean|reap]
 *                                         fork the step: stdin from /dev/null, $C/stdin or $C/in;
 *                                         with clean (or reap), first the previous job's reset
 *                                         as below, and when that leaves something, no step
 *   init → server   exit <status>         the step's shell ended ($? : 128 + n for signal n)
 *   init → server   exit dirty|skip       the reset before it failed: the step did not run
 *   server → init   clean [reap]          remove the SysV IPC objects and POSIX message queues
 *                                         the job left (its processes are dead by then), reap
 *                                         their zombies (with `reap`)
 *   init → server   clean ok|dirty|skip   dirty: something could not be removed
 *
 * The reset of a job is owed until the owner's next job and rides on its first `run` (one
 * message and one wake-up of init fewer per job, and no job waits for a reset); `clean` on
 * its own is for a step that must not be refused (an interactive one: its input is already
 * flowing). After a dirty reset init runs nothing more: the server destroys the sandbox.
 *
 * Each step runs in a subshell of init that closes fd 3, enters the work dir, sets umask
 * 022, takes its stdin, stdout ($C/out) and stderr ($C/err, both FIFOs the server reads),
 * drops init's own variables and arguments, and sources $C/cmd (whose first line, `set --`,
 * clears the one argument left): so the step starts with
 * init's environment (exactly the sandbox's), cwd, umask, rlimits and no other descriptor,
 * whatever an earlier step changed in its own processes. Sourcing, not exec'ing a new sh,
 * saves one exec per step (~1 ms of CPU here, a third of a step's); the price: `$$` in the
 * command's own shell is 1 (a fork of init), as in `sh -c` it would be its pid. The step is
 * run in the foreground: a background job of a non-interactive shell would start with SIGINT
 * and SIGQUIT ignored, unlike a fresh sandbox.
 *
 * Why init cannot be taken over by a job (docs/jobs.md, "Threat model"): it is pid 1 of the
 * sandbox's pid namespace, so the kernel drops every signal a job sends it (it sets no
 * handler); and it is an execute-only copy of the shell (installInitShell), which makes the
 * process non-dumpable: a job cannot ptrace it or open its /proc/1/mem, environ or fds.
 * `clean` refuses to run unless init is pid 1 (its own pid and IPC namespace), so it never
 * removes the host's IPC objects.
 */
import { chmod, copyFile, mkdir, realpath, rm } from 'node:fs/promises';
import path from 'node:path';

export const INIT_SCRIPT = `C=$1 W=$2 d=
reset() {
  a=$1
  if [ $$ != 1 ]; then r=skip d=1; return; fi
  r=ok
  for f in shm msg sem; do
    { read -r _ && read -r _ && r=ipc; } </proc/sysvipc/$f
  done
  if [ $r = ipc ]; then
    ipcrm --all >/dev/null 2>&1
    r=ok
    for f in shm msg sem; do
      { read -r _ && read -r _ && r=dirty; } </proc/sysvipc/$f
    done
  fi
  set -- /dev/mqueue/*
  if [ -e "$1" ]; then
    rm -f /dev/mqueue/* 2>/dev/null
    set -- /dev/mqueue/*
    [ -e "$1" ] && r=dirty
  fi
  [ "$a" = reap ] && ( : )
  [ $r = ok ] || d=1
}
echo ready >&3
while read -r op arg owed <&3; do
  case $op in
  run)
    if [ -n "$owed" ]; then reset "$owed"; fi
    if [ -n "$d" ]; then echo "exit \${r:-dirty}" >&3; continue; fi
    (
      exec 3<&-
      unset -f reset
      cd "$W" || exit 126
      umask 022
      case $arg in
      fifo) exec <"$C/in" ;;
      file) exec <"$C/stdin" ;;
      *) exec </dev/null ;;
      esac
      exec >"$C/out" 2>"$C/err"
      set -- "$C/cmd"
      unset C W d op arg owed r f a
      . "$1"
    )
    echo "exit $?" >&3 ;;
  clean)
    reset "$arg"
    echo "clean $r" >&3 ;;
  esac
done`;

/** Where the execute-only init shell lives inside a sandbox. */
export const INIT_SHELL_MOUNT = '/.init';

/**
 * Copies the system shell to `<dir>/sh` with mode 0111 (execute only) and returns `dir`.
 * A process that execs a file it cannot read is made non-dumpable by the kernel; inside the
 * sandbox nothing can read it (no CAP_DAC_OVERRIDE there), so init runs non-dumpable.
 */
export async function installInitShell(dir: string): Promise<string> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { mode: 0o755 });
  const sh = path.join(dir, 'sh');
  await copyFile(await realpath('/bin/sh'), sh);
  await chmod(sh, 0o111);
  return dir;
}
