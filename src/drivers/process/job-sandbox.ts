/**
 * One job sandbox: a bubblewrap sandbox whose pid 1 is the init of sandbox-init.ts, able to
 * run the steps of many jobs (a compile, a run, the cases of a batch) one after the other.
 *
 * Layout on the host, under the runner's root (a tmpfs by default):
 *   <id>/work     → /work      the job's files (writable; emptied between jobs)
 *   <id>/tmp      → /tmp       (writable; emptied between jobs)
 *   <id>/shm      → /dev/shm   (writable; emptied between jobs)
 *   <id>/control  → /.corral   read-only: cmd, stdin, and the FIFOs out, err, in
 *   <root>/.init  → /.init     read-only: the execute-only init shell
 * plus bwrap's own: a read-only root and /dev, /dev/mqueue, fresh /proc; new user, pid, ipc,
 * uts and net namespaces; no capabilities; the keyring filter (job-seccomp.ts).
 *
 * Two cgroups: the park (bwrap, and init until its first step) and the step cgroup
 * (step-cgroup.ts), where init lives from its first step on, so every process of a step is
 * born there and is killed, to the last one but init, when the step ends. Between jobs
 * everything a job could leave is removed: its files (host side, `reset()`), its IPC objects
 * and the zombies of its processes (init, inside, just before the owner's next step).
 *
 * Without bwrap (drivers.process.sandbox: none) the same init runs on the host, in the work
 * dir, in its own process group: such a sandbox is never reused. Neither is one without
 * cgroups (its leftovers could not be found for sure) or with the network.
 */
import { randomUUID } from 'node:crypto';
import { chmodSync, closeSync, constants as fsc, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Socket } from 'node:net';
import path from 'node:path';
import { childEnv } from '../../core/child-env.js';
import type { JobStatus } from '../../core/jobs/runner.js';
import { SANDBOX_PATH } from '../../core/jobs/runtimes.js';
import type { OutputStream } from '../driver.js';
import { CappedOutput } from '../job-output.js';
import { createCgroup, type Cgroup, type CgroupLimits } from './cgroups.js';
import { etcViewAt } from './etc-view.js';
import { launchArgv, type Rlimits } from './launcher.js';
import { killQuietly, signalName } from './proc.js';
import { attachPasta, type Pasta } from './network.js';
import { INIT_SCRIPT, INIT_SHELL_MOUNT } from './sandbox-init.js';
import { sandboxArgv } from './sandbox.js';
import { StepCgroup, type StepStats } from './step-cgroup.js';
import { defaultSpawner, type Spawned, type Spawner } from './spawner.js';

const CONTROL_MOUNT = '/.corral';
const WORK_MOUNT = '/work';
/** How long init may take to answer a request that needs no job code to run. */
const INIT_ANSWER_MS = 5000;
/** After a step ends, how long a writer the server could not kill may hold its output open. */
const OUTPUT_DRAIN_MS = 500;

/** A job's whole environment; `home` is its work dir as the job sees it. */
export const jobEnv = (home: string, tmp: string) => ({ PATH: SANDBOX_PATH, HOME: home, TMPDIR: tmp, LANG: 'C.UTF-8' });

/** What must be equal for a sandbox to fit a job. */
export interface Profile {
  network: boolean;
  readOnlyPaths: string[];
  limits: CgroupLimits;
  rlimits: Rlimits;
}

export interface SandboxOptions {
  /** Host directory under which each sandbox gets its own dir. */
  root: string;
  /** Host paths no job may see (corral's data dir). */
  hide: string[];
  /** Where the sandboxes' copy of /etc is kept (etc-view.ts). */
  etcRoot?: string;
  /** bwrap's path; undefined: unsandboxed (drivers.process.sandbox: none). */
  bwrap: string | undefined;
  /** Host dir holding the execute-only init shell (sandbox-init.ts). */
  initDir: string;
  /** The seccomp program (job-seccomp.ts), if this architecture has one. */
  seccomp?: Buffer;
  spawner?: Spawner;
  onError?: (err: unknown) => void;
  /**
   * A job with the network (network.ts): `hostNetwork` shares the host's namespace (UNSAFE);
   * else `pasta` gives its own namespace outbound access, never to the host's loopback.
   */
  network?: { hostNetwork: boolean; pasta?: string };
}

/** One step to run: a shell command with its stdin, under a timeout and an output cap. */
export interface StepRun {
  command: string;
  stdin?: Buffer;
  /** stdin stays open for write() until endInput() (interactive jobs). */
  keepStdinOpen: boolean;
  timeoutMs: number;
  /** Cap on stdout and on stderr, each. */
  outputBytes: number;
}

/** How a step ended. */
export interface StepOutcome extends StepStats {
  /** Why corral ended it (timeout, output limit, kill), if it did. */
  reason: JobStatus | undefined;
  code: number | null;
  signal: string | null;
  wallMs: number;
  stdout: CappedOutput;
  stderr: CappedOutput;
  /** Processes the step left running when its shell ended, killed by the server. */
  killed: number;
  /** Every process of the step is gone and the sandbox may run another step. */
  clean: boolean;
  /**
   * The step never ran: the previous job's reset, done by init just before it, left
   * something (the sandbox is killed; the job must start over in another one).
   */
  refused: boolean;
}

export interface RunningStep {
  write(data: Buffer | string): void;
  endInput(): void;
  /** Ends the step with `why` (its processes are killed; the sandbox lives on when it can). */
  stop(why: JobStatus): void;
  output(stream: OutputStream): Buffer;
  readonly done: Promise<StepOutcome>;
}

/** Sets the parent-death signal of an unsandboxed init (util-linux), as the process driver does. */
const SETPRIV_PATH = '/usr/bin/setpriv';

/** Reads the control socket line by line. */
class LineReader {
  private buffered = '';
  private readonly lines: string[] = [];
  private waiter: ((line: string | undefined) => void) | undefined;
  private closed = false;

  constructor(socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffered += chunk;
      let nl: number;
      while ((nl = this.buffered.indexOf('\n')) >= 0) {
        this.push(this.buffered.slice(0, nl));
        this.buffered = this.buffered.slice(nl + 1);
      }
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiter?.(undefined);
      this.waiter = undefined;
    });
  }

  private push(line: string): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w(line);
    } else this.lines.push(line);
  }

  /** The next line, or undefined once the socket closed. */
  next(): Promise<string | undefined> {
    if (this.lines.length) return Promise.resolve(this.lines.shift());
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((r) => (this.waiter = r));
  }
}

/** A promise that gives up after `ms` with `fallback`. */
function within<T>(p: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((r) => (timer = setTimeout(() => r(fallback), ms)))]).finally(() => clearTimeout(timer));
}

/** Opens a FIFO's read end for the server, with a keeper write end so it reads no EOF before the step opens it. */
function openOutputFifo(file: string): { socket: Socket; keeper: number } {
  const fd = openSync(file, fsc.O_RDONLY | fsc.O_NONBLOCK);
  const keeper = openSync(file, fsc.O_WRONLY | fsc.O_NONBLOCK);
  return { socket: new Socket({ fd, readable: true, writable: false }), keeper };
}

export class JobSandbox {
  readonly id = randomUUID();
  readonly dir: string;
  readonly workDir: string;
  readonly controlDir: string;
  private readonly writableDirs: { dir: string; mode: number }[];
  child!: Spawned;
  park: Cgroup | undefined;
  /** Its network forwarder (a job with the network). */
  pasta: Pasta | undefined;
  steps: StepCgroup | undefined;
  /** Host pid of init (the sandbox's pid 1). */
  initPid = 0;
  ready!: Promise<void>;
  isReady = false;
  /** Jobs it has run. */
  jobs = 0;
  /** The owner, runtime and profile it belongs to once a job used it (sandbox-pool.ts). */
  key: string | undefined;
  lastUsed = 0;
  /** What bwrap or init printed (a failed start says why there). */
  startError = '';
  /** A step's stdin file is in the control dir (removed by the reset). */
  private stdinWritten = false;
  /** init's part of the last job's reset, owed until the next step (`reap`: with zombies to reap). */
  private owed: 'clean' | 'reap' | undefined;
  private control!: LineReader;
  private destroyed: Promise<void> | undefined;

  private constructor(
    private readonly opts: SandboxOptions,
    readonly profile: Profile,
  ) {
    this.dir = path.join(opts.root, this.id);
    this.workDir = path.join(this.dir, 'work');
    this.controlDir = path.join(this.dir, 'control');
    this.writableDirs = [
      { dir: this.workDir, mode: 0o755 },
      { dir: path.join(this.dir, 'tmp'), mode: 0o755 },
      { dir: path.join(this.dir, 'shm'), mode: 0o755 },
    ];
  }

  get sandboxed(): boolean {
    return this.opts.bwrap !== undefined;
  }

  /** It can run another job once reset: sandboxed, with cgroups to find every leftover, no network. */
  get reusable(): boolean {
    return this.sandboxed && !!this.steps && !!this.park && !this.profile.network && this.alive;
  }

  get alive(): boolean {
    return this.child.exitInfo === undefined && !this.destroyed;
  }

  static async start(opts: SandboxOptions, profile: Profile): Promise<JobSandbox> {
    const sb = new JobSandbox(opts, profile);
    for (const { dir, mode } of sb.writableDirs) mkdirSync(dir, { recursive: true, mode });
    mkdirSync(sb.controlDir, { mode: 0o755 });
    try {
      const spawner = opts.spawner ?? defaultSpawner();
      const fifos = ['out', 'err', 'in'].map((f) => path.join(sb.controlDir, f));
      const [park, steps] = await Promise.all([
        createCgroup(`job-${sb.id}`, profile.limits),
        StepCgroup.create(`job-${sb.id}-steps`, profile.limits),
        // Node cannot make a FIFO: mkfifo, once per sandbox (sandboxes are reused).
        spawner.spawn(['mkfifo', '-m', '0600', ...fifos], { pipes: 3, env: childEnv() }).then(async (c) => {
          const { code } = await c.closed;
          if (code !== 0) throw new Error(`mkfifo exited ${code}`);
        }),
      ]);
      sb.park = park;
      sb.steps = steps;
      const argv = sb.sandboxed ? sb.inBwrap() : sb.onHost();
      sb.child = await spawner.spawn(argv, {
        pipes: sb.sandboxed && opts.seccomp ? 5 : 4,
        detached: !sb.sandboxed,
        env: sb.sandboxed ? childEnv() : jobEnv(sb.workDir, sb.workDir),
        cwd: sb.sandboxed ? undefined : sb.workDir,
      });
      if (sb.sandboxed && opts.seccomp) sb.child.stdio[4]!.end(opts.seccomp);
      // Steps have their own pipes; bwrap's or init's own stdio carry at most an error of theirs.
      sb.child.stdout.resume();
      sb.child.stderr.on('data', (d: Buffer) => (sb.startError = (sb.startError + d.toString()).slice(-2000)));
      // Unsandboxed, nothing else ends what a job left when init exits: its process group.
      if (!sb.sandboxed) void sb.child.exited.then(() => killQuietly(-sb.child.pid, 'SIGKILL'));
      sb.control = new LineReader(sb.child.stdio[3]!);
      sb.ready = sb.control.next().then((line) => {
        if (line !== 'ready') return;
        sb.initPid = sb.sandboxed ? sb.findInit() : sb.child.pid;
        if (sb.initPid) sb.isReady = true;
      }).then(() => sb.attachNetwork());
    } catch (e) {
      await sb.destroy();
      throw e;
    }
    return sb;
  }

  /** A job with the network in its own namespace: pasta for outbound, before its first step. */
  private async attachNetwork(): Promise<void> {
    const pasta = this.opts.network?.pasta;
    if (!this.isReady || !this.sandboxed || !this.profile.network || this.opts.network?.hostNetwork || !pasta) return;
    try {
      this.pasta = await attachPasta({ pasta, pid: this.initPid, ports: [], outbound: 'pasta', spawner: this.opts.spawner ?? defaultSpawner() });
    } catch (e) {
      this.opts.onError?.(e);
      this.isReady = false;
      this.kill();
    }
  }

  /** bwrap with --as-pid-1: init is bwrap's only child, pid 1 inside. */
  private findInit(): number {
    try {
      const pid = this.child.pid;
      return Number(readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/)[0]) || 0;
    } catch {
      return 0;
    }
  }

  private inBwrap(): string[] {
    const opts = this.opts;
    const [work, tmp, shm] = this.writableDirs.map((d) => d.dir);
    const sandbox = sandboxArgv({
      bwrap: opts.bwrap!,
      command: [`${INIT_SHELL_MOUNT}/sh`, '-c', INIT_SCRIPT, 'corral-init', CONTROL_MOUNT, WORK_MOUNT],
      env: jobEnv(WORK_MOUNT, '/tmp'),
      cwd: WORK_MOUNT,
      writable: [
        { source: work!, target: WORK_MOUNT },
        { source: tmp!, target: '/tmp' },
        { source: shm!, target: '/dev/shm' },
      ],
      readOnly: [
        { source: this.controlDir, target: CONTROL_MOUNT },
        { source: opts.initDir, target: INIT_SHELL_MOUNT },
        ...this.profile.readOnlyPaths.map((p) => ({ source: p, target: p })),
      ],
      network: this.profile.network && !!opts.network?.hostNetwork,
      hostname: 'job',
      hide: opts.hide,
      etc: opts.etcRoot ? etcViewAt(opts.etcRoot, opts.onError).current() : undefined,
    });
    // Init is pid 1 (no bwrap reaper a job could ptrace); POSIX message queues are listed in
    // /dev/mqueue so init can remove them; /dev itself is read-only (its tmpfs would carry
    // files from job to job); the keyring filter on fd 4. Options must precede "--".
    sandbox.splice(
      sandbox.indexOf('--'),
      0,
      '--as-pid-1',
      '--mqueue', '/dev/mqueue',
      '--remount-ro', '/dev',
      ...(opts.seccomp ? ['--seccomp', '4'] : []),
    );
    return launchArgv({ procsFiles: this.park?.procsFiles, rlimits: this.profile.rlimits }, sandbox);
  }

  /** Unsandboxed (the admin's explicit choice): the same init on the host, in its own group. */
  private onHost(): string[] {
    const setpriv = existsSync(SETPRIV_PATH) ? SETPRIV_PATH : undefined;
    return launchArgv({ procsFiles: this.park?.procsFiles, rlimits: this.profile.rlimits, setpriv }, [
      '/bin/sh', '-c', INIT_SCRIPT, 'corral-init', this.controlDir, this.workDir,
    ]);
  }

  /** Runs one step; its output goes to `onOutput` (what fits under the cap) as it comes. */
  runStep(step: StepRun, onOutput: (stream: OutputStream, chunk: Buffer) => void): RunningStep {
    const c = this.controlDir;
    // Sourced by the step's shell (sandbox-init.ts): first clear the argument init left.
    writeFileSync(path.join(c, 'cmd'), `set --\n${step.command}\n`);
    let stdinMode = 'null';
    let input: Socket | undefined;
    if (step.keepStdinOpen) {
      stdinMode = 'fifo';
      // O_RDWR never blocks and keeps a reader, so writes wait in the pipe until the step opens it.
      input = new Socket({ fd: openSync(path.join(c, 'in'), fsc.O_RDWR | fsc.O_NONBLOCK), readable: false, writable: true });
      input.on('error', () => {});
      if (step.stdin?.length) input.write(step.stdin);
    } else if (step.stdin?.length) {
      stdinMode = 'file';
      writeFileSync(path.join(c, 'stdin'), step.stdin);
      this.stdinWritten = true;
    }
    const out = { stdout: new CappedOutput(step.outputBytes), stderr: new CappedOutput(step.outputBytes) };
    const pipes = { stdout: openOutputFifo(path.join(c, 'out')), stderr: openOutputFifo(path.join(c, 'err')) };
    let reason: JobStatus | undefined;
    let ended = false;
    let guard: NodeJS.Timeout | undefined;
    const stop = (why: JobStatus) => {
      if (ended) return;
      reason ??= why;
      // The step's processes go and init reports its end; should it not, the sandbox goes.
      // Without a step cgroup, or when a user kills the job, the whole sandbox goes at once.
      if (!this.steps || why === 'killed') return this.kill();
      void this.steps.killAllBut(this.initPid);
      guard ??= setTimeout(() => this.kill(), INIT_ANSWER_MS);
    };
    const drained: Promise<void>[] = [];
    for (const stream of ['stdout', 'stderr'] as const) {
      const { socket } = pipes[stream];
      socket.on('error', () => {});
      socket.on('data', (chunk: Buffer) => {
        const part = out[stream].take(chunk);
        if (part) onOutput(stream, part);
        if (out[stream].truncated) stop('output-limit');
      });
      drained.push(new Promise((r) => socket.once('close', () => r())));
    }
    this.steps?.begin(this.initPid);
    const started = performance.now();
    // init's part of the last job's reset rides on this message (sandbox-init.ts).
    const owed = this.owed;
    this.owed = undefined;
    this.child.stdio[3]!.write(owed ? `run ${stdinMode} ${owed}\n` : `run ${stdinMode}\n`);
    const timer = setTimeout(() => stop('timeout'), step.timeoutMs);

    const done = (async (): Promise<StepOutcome> => {
      // The step's shell ends (init says so), or the sandbox dies: then the control socket
      // closes (no process holds it any more) and there is no line. (Not a race with the
      // child's exit: each step would leave a reaction on that promise for the sandbox's life.)
      const line = await this.control.next();
      const wallMs = performance.now() - started;
      ended = true;
      clearTimeout(timer);
      clearTimeout(guard);
      const word = line?.startsWith('exit ') ? line.slice(5) : undefined;
      const status = word !== undefined && /^\d+$/.test(word) ? Number(word) : undefined;
      // `exit dirty`: the reset before the step left something; init ran nothing.
      const refused = word !== undefined && status === undefined;
      const alive = status !== undefined && this.alive;
      if (!alive) this.kill();
      const end = this.steps && alive
        ? await this.steps.end(this.initPid)
        : { ...(this.steps?.endDead() ?? { cpuMs: null, memoryPeakBytes: null, oomKilled: false }), killed: 0, empty: false };
      input?.destroy();
      for (const { keeper } of Object.values(pipes)) closeSync(keeper);
      // Every writer is dead: the rest of the output is in the pipes, then EOF. Without a
      // cgroup a leftover may still hold them: give up waiting after a moment.
      const closed = await within(Promise.all(drained).then(() => true), OUTPUT_DRAIN_MS, false);
      if (!closed) for (const p of Object.values(pipes)) p.socket.destroy();
      const bySignal = status !== undefined && status > 128 && status < 128 + 65 ? (signalName(status - 128) ?? null) : null;
      return {
        reason,
        code: status ?? null,
        signal: bySignal ?? (status === undefined ? 'SIGKILL' : null),
        wallMs,
        cpuMs: end.cpuMs,
        memoryPeakBytes: end.memoryPeakBytes,
        oomKilled: end.oomKilled,
        stdout: out.stdout,
        stderr: out.stderr,
        killed: end.killed,
        clean: alive && end.empty && closed,
        refused,
      };
    })();

    return {
      write: (data) => {
        if (input && !input.destroyed) input.write(data);
      },
      endInput: () => input?.end(() => input?.destroy()),
      stop,
      output: (stream) => out[stream].buffer,
      done,
    };
  }

  /**
   * Makes it fit for the owner's next job: empties /work, /tmp and /dev/shm and resets their
   * modes (a job may chmod them), removes the step's stdin file; init's part (the IPC objects
   * and message queues the job left, the zombies of its processes) is owed and done by init
   * just before the next step, in the same message (`run … clean`): nothing waits for it, and
   * a sandbox whose init finds something it cannot remove runs nothing more. False when
   * anything is left: then it must be destroyed, not reused.
   */
  async reset(reap: boolean): Promise<boolean> {
    if (!this.reusable) return false;
    this.owed = reap || this.owed === 'reap' ? 'reap' : 'clean';
    // The job's stdin must not reach the next job (cmd is rewritten before every step).
    if (this.stdinWritten) rmSync(path.join(this.controlDir, 'stdin'), { force: true });
    this.stdinWritten = false;
    for (const { dir, mode } of this.writableDirs) {
      chmodSync(dir, mode);
      // Usually empty, or a few files: unlinked at once; directories through the thread pool.
      const entries = readdirSync(dir, { withFileTypes: true });
      if (!entries.length) continue;
      await Promise.all(
        entries.map((e) => (e.isDirectory() ? rm(path.join(dir, e.name), { recursive: true, force: true }) : unlinkSync(path.join(dir, e.name)))),
      );
      if (readdirSync(dir).length) return false;
    }
    return this.alive;
  }

  /** init's part of the reset is still to do (before the next step). */
  get owesReset(): boolean {
    return this.owed !== undefined;
  }

  /**
   * Has init do its owed part of the reset now, on its own: for a step that must not be
   * refused (an interactive one, whose input already flows). False: it left something.
   */
  async settle(): Promise<boolean> {
    if (!this.owed) return true;
    const reap = this.owed === 'reap';
    this.owed = undefined;
    this.child.stdio[3]!.write(reap ? 'clean reap\n' : 'clean\n');
    return (await within(this.control.next(), INIT_ANSWER_MS, undefined)) === 'clean ok';
  }

  /** Kills everything in it (at once: bwrap and, through its pid namespace, every process). */
  kill(): void {
    void this.pasta?.stop();
    const child = this.child as Spawned | undefined;
    if (child && !this.sandboxed && !child.exitInfo) killQuietly(-child.pid, 'SIGKILL');
    child?.kill('SIGKILL');
    void this.park?.killMembers();
    void this.steps?.killAllBut(0);
  }

  /** Kills what is left and removes its cgroups and dirs. */
  destroy(): Promise<void> {
    this.destroyed ??= (async () => {
      if (this.child as Spawned | undefined) {
        this.kill();
        await this.child.closed;
      }
      // Files first: on a tmpfs their pages are charged to the cgroups, which then go cleanly.
      await rm(this.dir, { recursive: true, force: true });
      await Promise.all([this.park?.remove(), this.steps?.remove()].map((p) => p?.catch(() => undefined)));
    })();
    return this.destroyed;
  }
}
