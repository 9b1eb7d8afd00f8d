/**
 * One job container ("box"): started from a runtime image with an agent shell as its command,
 * which runs jobs one after another. The box is given to one owner at a time and only ever to
 * that owner once it ran a job of theirs (job-pool.ts); the runner decides when it is retired.
 *
 * The agent (AGENT below) waits for a line `<nonce> <more|last>` on the container's stdin, then
 * runs the job in a subshell — so no variable, function, cwd, umask or limit a job sets outlives
 * it — that sources the command from the read-only control dir, with stdin from the control
 * dir's `stdin` file (interactive jobs read the container's stdin instead, and are the box's
 * last). After the job it resets the container: SIGKILL to every process but itself and the
 * init (`kill -9 -1`, repeated until /proc shows none), empties /tmp, /dev/shm and /dev/mqueue,
 * and checks that no System V IPC object is left. Then it prints the exit marker with the code
 * and whether the reset came out clean (exit-marker.ts); `last` makes it exit instead of
 * waiting for another job. The work dir (/work) is a host dir, emptied by the runner.
 */
import { randomUUID } from 'node:crypto';
import { chownSync, mkdirSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type Docker from 'dockerode';
import type { JobLimits } from '../../core/jobs/runner.js';
import { SANDBOX_PATH } from '../../core/jobs/runtimes.js';
import type { ExitStatus, OutputStream } from '../driver.js';
import { attach, removeContainer, waitForExit, type Attached } from './container-io.js';
import { ContainerCgroup } from './container-cgroup.js';
import { hostConfig, hostOwner, labels, type ContainerSettings } from './container-spec.js';
import type { Engine } from './engine.js';
import { ExitMarker } from './exit-marker.js';

export const WORK_MOUNT = '/work';
export const CONTROL_MOUNT = '/.corral';

/** What must be equal for a container to fit a job. */
export interface Profile {
  image: string;
  network: boolean;
  limits: Pick<JobLimits, 'memoryBytes' | 'pids' | 'cpus' | 'fileSizeBytes' | 'openFiles'>;
}

/**
 * Tasks in a box's cgroup while the agent waits: the engine's init and the agent's shell. A
 * constant, not counted at start: right after the start the init may not have forked the
 * agent yet (seen on a loaded CI machine: 1 counted, so every later look judged the box unclean).
 */
const IDLE_TASKS = 2;

export const profileKey = (p: Profile): string => JSON.stringify(p);

/** Everything but this shell and the init, until /proc shows none (a fork bomb is bounded by the pids limit). */
const SWEEP = `corral_try=0
while :; do
  kill -9 -1 2>/dev/null
  wait
  corral_left=
  for corral_p in /proc/[0-9]*; do
    case "\${corral_p#/proc/}" in 1|$$) ;; *) [ -e "$corral_p" ] && corral_left=1 ;; esac
  done
  [ -z "$corral_left" ] && break
  corral_try=$((corral_try+1))
  [ "$corral_try" -ge 500 ] && { corral_clean=0; break; }
done
for corral_d in /tmp /dev/shm /dev/mqueue; do
  for corral_f in "$corral_d"/* "$corral_d"/.[!.]* "$corral_d"/..?*; do
    if [ -e "$corral_f" ] || [ -L "$corral_f" ]; then
      rm -rf -- "$corral_f" 2>/dev/null
      if [ -e "$corral_f" ] || [ -L "$corral_f" ]; then corral_clean=0; fi
    fi
  done
done
for corral_f in /proc/sysvipc/shm /proc/sysvipc/sem /proc/sysvipc/msg; do
  [ -r "$corral_f" ] || continue
  corral_n=0
  while IFS= read -r corral_l; do corral_n=$((corral_n+1)); done < "$corral_f"
  [ "$corral_n" -gt 1 ] && corral_clean=0
done`;

const AGENT = `while IFS=' ' read -r corral_job corral_next; do
  ( unset corral_job corral_next; . ${CONTROL_MOUNT}/cmd )
  corral_status=$?
  corral_clean=1
${SWEEP}
  ${ExitMarker.printf('"$corral_job"', '"$corral_status"', '"$corral_clean"', 1)}
  ${ExitMarker.printf('"$corral_job"', '"$corral_status"', '"$corral_clean"', 2)}
  [ "$corral_next" = more ] || exit "$corral_status"
done`;

/** The cmd file of a job: its command, with stdin from the control dir's file unless interactive. */
export const jobCommand = (command: string, interactive: boolean): string =>
  interactive ? `${command}\n` : `exec <${CONTROL_MOUNT}/stdin\n${command}\n`;

export interface BoxOptions {
  engine: Engine;
  settings: ContainerSettings;
  /** Host dir under which each box gets its own dir. */
  root: string;
}

export class JobBox {
  readonly id = randomUUID();
  readonly dir: string;
  readonly workDir: string;
  readonly controlDir: string;
  readonly key: string;
  container!: Docker.Container;
  io!: Attached;
  /** The container's exit, as soon as it was started. */
  exit!: Promise<ExitStatus>;
  exited = false;
  /** Its cgroup on this machine (a job's CPU time and memory peak). */
  cgroup: ContainerCgroup | undefined;
  /** Whether it may run more than one job: its cgroup is readable and its user is not root. */
  reusable = false;
  /** Jobs it ran so far. */
  jobs = 0;
  /** Output goes here once a job owns the box. */
  onOutput: (stream: OutputStream, chunk: Buffer) => void = () => {};

  private constructor(root: string, readonly profile: Profile) {
    this.dir = path.join(root, this.id);
    this.workDir = path.join(this.dir, 'work');
    this.controlDir = path.join(this.dir, 'control');
    this.key = profileKey(profile);
  }

  static async start(opts: BoxOptions, profile: Profile): Promise<JobBox> {
    const { settings } = opts;
    const box = new JobBox(opts.root, profile);
    mkdirSync(box.workDir, { recursive: true, mode: 0o755 });
    mkdirSync(box.controlDir, { mode: 0o755 });
    const hostUser = hostOwner(settings.user);
    if (hostUser) chownSync(box.workDir, hostUser.uid, hostUser.gid);
    const { limits } = profile;
    try {
      box.container = await opts.engine.createContainer({
        Image: profile.image,
        Entrypoint: [],
        Cmd: ['/bin/sh', '-c', AGENT],
        Env: [`PATH=${SANDBOX_PATH}`, `HOME=${WORK_MOUNT}`, 'TMPDIR=/tmp', 'LANG=C.UTF-8'],
        WorkingDir: WORK_MOUNT,
        ...(settings.user && { User: settings.user }),
        Hostname: 'job',
        Labels: labels(settings, 'job', ''),
        AttachStdin: true,
        AttachStdout: true,
        AttachStderr: true,
        OpenStdin: true,
        // Ending our side of the attach closes the agent's stdin: it exits.
        StdinOnce: true,
        Tty: false,
        HostConfig: {
          ...hostConfig(settings, limits, profile.network),
          Mounts: [
            { Type: 'bind', Source: box.workDir, Target: WORK_MOUNT, ReadOnly: false },
            { Type: 'bind', Source: box.controlDir, Target: CONTROL_MOUNT, ReadOnly: true },
          ],
          Ulimits: [
            { Name: 'fsize', Soft: limits.fileSizeBytes, Hard: limits.fileSizeBytes },
            { Name: 'nofile', Soft: limits.openFiles, Hard: limits.openFiles },
            { Name: 'core', Soft: 0, Hard: 0 },
          ],
        },
      });
      box.io = await attach(box.container, false, (stream, chunk) => box.onOutput(stream, chunk));
      await box.container.start();
      box.exit = waitForExit(box.container, box.io).finally(() => (box.exited = true));
      // Reusing a box needs its cgroup (to see that nothing of a job is left, and a job's CPU
      // and memory). A workload running as root in the container could rewrite files the
      // reset does not look at (/etc/hosts): its boxes run one job each.
      const pid = (await box.container.inspect()).State.Pid;
      box.cgroup = pid ? ContainerCgroup.of(pid) : undefined;
      box.reusable = box.cgroup?.tasks() !== undefined && hostUser !== undefined && hostUser.uid !== 0;
    } catch (e) {
      await box.destroy();
      throw e;
    }
    return box;
  }

  /** Whether a later job may use it: its cgroup holds only the init and the waiting agent. */
  idleOnHost(): boolean {
    return !this.exited && this.cgroup?.tasks() === IDLE_TASKS;
  }

  /** Empties /work for the next job (only once nothing of the last job runs). */
  async emptyWorkDir(): Promise<void> {
    const entries = await readdir(this.workDir);
    await Promise.all(entries.map((e) => rm(path.join(this.workDir, e), { recursive: true, force: true })));
  }

  kill(): void {
    if (!this.exited) void this.container.kill({ signal: 'SIGKILL' }).catch(() => undefined);
  }

  async destroy(): Promise<void> {
    this.io?.stream.destroy();
    if (this.container) await removeContainer(this.container).catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true });
  }
}
