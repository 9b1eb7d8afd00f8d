/**
 * One running workload of the process driver: the spawned launcher → bwrap → workload chain,
 * its cgroup, its pipes, and how to signal and kill all of it.
 *
 * Process tree with bwrap:  server → bwrap (outer, host pid = handle.pid)
 *                                     └ bwrap (pid 1 of the new pid namespace) └ workload …
 * Signals go to every process of the tree except the outer bwrap (which would die at once
 * and take the namespace down with SIGKILL, leaving no grace). The namespace's pid 1 ignores
 * signals it has no handler for, so the workload alone sees them. Without bwrap the tree is
 * the workload's process group plus its descendants.
 *
 * Its pasta (network.ts), when it has one, lives exactly as long: killed when the workload
 * exits, before the exit is reported; and if pasta dies first the workload is killed too
 * (unreachable, it would only look alive), so the restart policy brings both back.
 */
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExitStatus, Handle, Workload, WorkloadSink, WorkloadStats } from '../driver.js';
import type { Cgroup } from './cgroups.js';
import type { Pasta } from './network.js';
import { errors } from '../../core/errors.js';
import { readOutput } from './output-reader.js';
import { descendants, killQuietly, signalName, signalNumber } from './proc.js';
import type { Spawned } from './spawner.js';

/** After the main process exits, how long stray holders of its pipes may keep them open. */
const PIPE_DRAIN_MS = 200;
/** How long the workload may take to end after its pasta did, before pasta's end is news. */
const PASTA_GONE_MS = 1000;
/** After SIGKILL of everything, how long until we report the exit regardless. */
const KILL_SETTLE_MS = 5000;

export interface WorkloadParts {
  /** Just spawned. */
  child: Spawned;
  handle: Handle;
  sandboxed: boolean;
  cgroup?: Cgroup;
  sink: WorkloadSink;
  /** The forwarder attached to its network namespace (ports, outbound), if any. */
  pasta?: Pasta;
  /** Called once after the exit was reported and the cgroup removed (the driver forgets it). */
  onGone: () => void;
  /**
   * Kept by the keeper (keeper.ts): lets go of the pipes without stopping anything, so the
   * workload outlives this server. Present → the workload has detach().
   */
  release?: () => void;
}

export class ProcessWorkload implements Workload {
  readonly handle: Handle;
  /** Resolves after sink.exit() was called. */
  readonly exited: Promise<ExitStatus>;
  /** Resolves once the cgroup is removed too (after the exit report, off the latency path). */
  readonly finished: Promise<void>;
  private done = false;
  private readonly pid: number;
  /** Lets it run on without this server (keeper workloads only; see WorkloadParts.release). */
  readonly detach?: () => void;

  constructor(private readonly parts: WorkloadParts) {
    this.handle = parts.handle;
    this.pid = parts.child.pid;
    const { child, sink } = parts;
    const stopReading = [
      readOutput(child.stdout, (chunk) => sink.output('stdout', chunk)),
      readOutput(child.stderr, (chunk) => sink.output('stderr', chunk)),
    ];
    this.exited = this.watchExit(child.exited);
    void parts.pasta?.exited.then(async (said) => {
      // pasta also leaves by itself when the sandbox ends, often before we hear of that end:
      // only a pasta gone while the workload runs on is news.
      const ended = await Promise.race([child.exited.then(() => true), sleep(PASTA_GONE_MS, false, { ref: false })]);
      if (ended || this.done) return;
      sink.output('stderr', Buffer.from(`corral: the network forwarder (pasta) exited${said ? `: ${said}` : ''}; stopping\n`));
      void this.killTree().catch(() => undefined);
    });
    if (parts.release) {
      const release = parts.release;
      this.detach = () => {
        if (this.done) return;
        this.done = true;
        for (const stop of stopReading) stop();
        release();
        this.parts.onGone();
      };
    }
    this.finished = this.cleanUp();
  }

  /** After the exit report: the cgroup goes, then the driver forgets it. */
  private async cleanUp(): Promise<void> {
    try {
      await this.exited;
      await this.parts.cgroup?.remove();
    } catch {
      /* the exit was reported already: nothing more to say */
    } finally {
      this.parts.onGone();
    }
  }

  private async watchExit(exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>): Promise<ExitStatus> {
    const { cgroup, sink, sandboxed } = this.parts;
    const { code, signal } = await exit;
    // Leftovers (background children of an unsandboxed workload) must not outlive it. One
    // pass is enough here: the cgroup's removal later kills until it is empty.
    await this.killTree(false);
    // Its ports are free again once the exit is reported (a restart may want them).
    await this.parts.pasta?.stop();
    await this.drainPipes();
    const oomKilled = cgroup ? await cgroup.oomKilled() : false;
    this.done = true;
    const status = exitStatus(code, signal, sandboxed, oomKilled);
    sink.exit(status);
    return status;
  }

  /** Waits for stdout/stderr to end, but not forever: something detached may hold them. */
  private async drainPipes(): Promise<void> {
    const { child } = this.parts;
    const streams = [child.stdout, child.stderr].filter((s) => !s.readableEnded && !s.destroyed);
    if (!streams.length) return;
    const ended = Promise.all(streams.map((s) => once(s, 'close').catch(() => undefined)));
    await Promise.race([ended, sleep(PIPE_DRAIN_MS)]);
    for (const s of streams) s.destroy();
  }

  write(data: Buffer | string): void {
    if (this.done) return;
    // A keeper's child opens its stdin here, at the first write (keeper-client.ts); a workload
    // that closed its stdin must not crash the server with EPIPE (Child ignores pipe errors).
    const stdin = this.parts.child.stdin;
    if (stdin.writable) stdin.write(data);
  }

  /** False once the exit was reported. */
  get alive(): boolean {
    return !this.done;
  }

  private get running(): boolean {
    return this.parts.child.exitInfo === undefined;
  }

  /** Every process of the workload that may receive a polite signal (see the header). */
  private async targets(): Promise<number[]> {
    const set = new Set<number>(await descendants(this.pid, { group: !this.parts.sandboxed }));
    for (const pid of (await this.parts.cgroup?.pids()) ?? []) set.add(pid);
    set.delete(this.pid);
    // The main process is signalled through node, which knows whether it was reaped already
    // (a raw kill(pid) could hit a reused pid).
    return [...set];
  }

  signal(signal: string): void {
    if (signalNumber(signal) === undefined) throw errors.badRequest(`unknown signal "${signal}"`);
    void this.sendSignal(signal).catch(() => undefined);
  }

  private async sendSignal(signal: string): Promise<void> {
    const num = signalNumber(signal);
    if (num === undefined) throw errors.badRequest(`unknown signal "${signal}"`);
    if (this.done) return;
    const targets = await this.targets();
    if (!this.parts.sandboxed && this.running) this.parts.child.kill(num);
    for (const pid of targets) killQuietly(pid, num);
  }

  /**
   * SIGKILL for the whole tree, its process group and its cgroup. Also used after the main
   * process exited, to take down what it left behind (its group id stays reserved while
   * members live, so kill(-pgid) cannot hit a stranger).
   */
  private async killTree(untilEmpty = true): Promise<void> {
    const tree = this.running ? await descendants(this.pid, { group: true }) : [];
    if (this.running) this.parts.child.kill('SIGKILL');
    killQuietly(-this.pid, 'SIGKILL');
    for (const pid of tree) killQuietly(pid, 'SIGKILL');
    const { cgroup } = this.parts;
    if (cgroup) await (untilEmpty ? cgroup.killAll() : cgroup.killMembers());
  }

  async stop(signal: string, graceMs: number): Promise<void> {
    if (this.done) return;
    await this.sendSignal(signal);
    const exitedInTime = await Promise.race([this.exited.then(() => true), sleep(graceMs).then(() => false)]);
    if (!exitedInTime) {
      await this.killTree();
      await Promise.race([this.exited, sleep(KILL_SETTLE_MS)]);
    }
  }

  async stats(): Promise<WorkloadStats> {
    if (this.parts.cgroup && !this.done) return this.parts.cgroup.stats();
    return { pids: this.done ? 0 : (await this.targets()).length };
  }
}

/**
 * bwrap reports a workload killed by signal n as exit code 128+n; map it back so both modes
 * (and the container drivers) report signals the same way. A program that itself exits with
 * 128+n is indistinguishable, as in any shell.
 */
export function exitStatus(code: number | null, signal: NodeJS.Signals | string | null, sandboxed: boolean, oomKilled: boolean): ExitStatus {
  if (sandboxed && code !== null && code > 128 && code < 128 + 65) {
    const name = signalName(code - 128);
    if (name) return { code: null, signal: name, oomKilled };
  }
  return { code, signal, oomKilled };
}
