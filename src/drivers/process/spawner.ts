/**
 * Starts child processes without blocking the server.
 *
 * Node's spawn() forks the calling process, and fork copies its page tables: from a server
 * holding ~150 MB that blocks the event loop for 10–25 ms per child (measured; a fresh node
 * process takes ~2.5 ms), on every instance start and every job sandbox. So the server
 * forks once, a small spawn host (spawn-host.ts), and asks it over IPC for every child.
 * The host passes each pipe's handle back (SCM_RIGHTS) and reports the exit; the output
 * flows straight from the child to the server, never through the host.
 *
 * `LocalSpawner` does the same in-process, for when the host cannot run.
 *
 * Environment: nothing here inherits the server's (it holds secrets; see core/child-env.ts).
 * The host itself is forked with the minimal base environment, and every child must be
 * given its `env`: the option is required, and the host refuses a request without one.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Readable, Writable } from 'node:stream';
import { childEnv, type ChildEnv } from '../../core/child-env.js';

export interface SpawnOptions {
  /** Number of pipes: 3 = stdin, stdout, stderr; more = extra fds 3, 4, … (all pipes). */
  pipes: number;
  /** setsid(): the child leads a new process group (pgid = pid). */
  detached?: boolean;
  /** The child's whole environment (childEnv() or a workload's own): never inherited. */
  env: ChildEnv;
  cwd?: string;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A started child: its pid, its pipes (already readable), and its end. */
export interface Spawned {
  readonly pid: number;
  /** [stdin, stdout, stderr, fd 3, …]; a keeper's child has no stdin here until `stdin` is first used. */
  readonly stdio: Socket[];
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Set once the child exited. */
  readonly exitInfo: ExitInfo | undefined;
  /** Resolves when the child exited. */
  readonly exited: Promise<ExitInfo>;
  /** Resolves when it exited and its stdout and stderr are closed (like node's 'close'). */
  readonly closed: Promise<ExitInfo>;
  /** Signals the child itself; does nothing once it exited (its pid may be reused). */
  kill(signal: NodeJS.Signals | number): void;
}

export interface Spawner {
  spawn(argv: string[], opts: SpawnOptions): Promise<Spawned>;
}

/** Wire messages between the server and the spawn host. */
export interface SpawnRequest extends SpawnOptions {
  id: number;
  argv: string[];
}
export interface KillRequest {
  id: number;
  kill: NodeJS.Signals | number;
}
export type HostMessage =
  | { id: number; pid: number }
  | { id: number; fd: number }
  | { id: number; error: string }
  | { id: number; exit: [number | null, NodeJS.Signals | null] };

/** For pipe errors (EPIPE on a closed stdin, a reset): the child's end is what counts. One function for all. */
export const ignoreError = (): void => undefined;

/**
 * Shared by the spawners (and the keeper's client): exit bookkeeping and the 'close' rule.
 * A server holds thousands (one per workload): what only some users need (`closed`) is made
 * when first asked for, and nothing here is a closure per child but the exit's resolver.
 */
export class Child implements Spawned {
  exitInfo: ExitInfo | undefined;
  readonly exited: Promise<ExitInfo>;
  private closedOnce: Promise<ExitInfo> | undefined;
  private resolveExit!: (e: ExitInfo) => void;

  constructor(
    readonly pid: number,
    readonly stdio: Socket[],
    private readonly signal: (s: NodeJS.Signals | number) => void,
    /** Opens stdin at its first use (keeper-client.ts: most workloads are never written to). */
    private readonly openStdin?: () => Socket,
  ) {
    for (const s of stdio) s?.on('error', ignoreError);
    this.exited = new Promise((r) => (this.resolveExit = r));
  }

  /** Resolves when it exited and its stdout and stderr are closed (a pipe closed before this was asked counts). */
  get closed(): Promise<ExitInfo> {
    if (!this.closedOnce) {
      const outputClosed = [this.stdio[1], this.stdio[2]].map((s) => (s && !s.closed ? new Promise((r) => s.once('close', r)) : undefined));
      this.closedOnce = Promise.all([this.exited, ...outputClosed]).then(([e]) => e);
    }
    return this.closedOnce;
  }

  get stdin(): Writable {
    if (!this.stdio[0] && this.openStdin) {
      this.stdio[0] = this.openStdin();
      this.stdio[0].on('error', ignoreError);
    }
    return this.stdio[0]!;
  }
  get stdout(): Readable {
    return this.stdio[1]!;
  }
  get stderr(): Readable {
    return this.stdio[2]!;
  }

  exit(info: ExitInfo): void {
    if (this.exitInfo) return;
    this.exitInfo = info;
    this.resolveExit(info);
  }

  kill(signal: NodeJS.Signals | number): void {
    if (!this.exitInfo) this.signal(signal);
  }
}

/** Forks from this process (blocks the event loop while the kernel copies it). */
export class LocalSpawner implements Spawner {
  async spawn(argv: string[], opts: SpawnOptions): Promise<Spawned> {
    const cp: ChildProcess = spawn(argv[0]!, argv.slice(1), {
      stdio: Array.from({ length: opts.pipes }, () => 'pipe' as const),
      detached: opts.detached,
      env: opts.env,
      cwd: opts.cwd,
    });
    if (cp.pid === undefined) {
      const err = await new Promise<Error>((r) => cp.once('error', r));
      throw err;
    }
    const child = new Child(cp.pid, cp.stdio as unknown as Socket[], (s) => cp.kill(s));
    cp.once('exit', (code, signal) => child.exit({ code, signal }));
    return child;
  }
}

interface Pending {
  argvHead: string;
  pipes: number;
  pid?: number;
  handles: Socket[];
  resolve: (c: Spawned) => void;
  reject: (e: Error) => void;
  child?: Child;
}

/** Asks the spawn host for every child (see the header). */
export class HostSpawner implements Spawner {
  private host: ChildProcess | undefined;
  private nextId = 1;
  private readonly children = new Map<number, Pending>();

  spawn(argv: string[], opts: SpawnOptions): Promise<Spawned> {
    const host = this.ensureHost();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.children.set(id, { argvHead: argv[0] ?? '', pipes: opts.pipes, handles: [], resolve, reject });
      this.updateRef();
      host.send({ id, argv, ...opts } satisfies SpawnRequest);
    });
  }

  private ensureHost(): ChildProcess {
    if (this.host && this.host.exitCode === null && this.host.signalCode === null && this.host.connected) return this.host;
    const { file, execArgv } = hostModule();
    const host = fork(file, [], { execArgv, env: childEnv(), stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' });
    host.on('message', (m: HostMessage, handle?: Socket) => this.onMessage(m, handle));
    host.once('exit', () => this.hostGone(host));
    host.on('error', () => {});
    host.unref();
    this.host = host;
    return host;
  }

  /** The channel keeps the process alive only while a child is starting or running. */
  private updateRef(): void {
    const channel = (this.host as (ChildProcess & { channel?: { ref(): void; unref(): void } }) | undefined)?.channel;
    if (this.children.size) channel?.ref();
    else channel?.unref();
  }

  private onMessage(m: HostMessage, handle: Socket | undefined): void {
    const p = this.children.get(m.id);
    if (!p) {
      handle?.destroy();
      return;
    }
    if ('error' in m) {
      this.children.delete(m.id);
      this.updateRef();
      p.reject(Object.assign(new Error(`spawn ${p.argvHead}: ${m.error}`), { code: 'ENOENT' }));
    } else if ('pid' in m) {
      p.pid = m.pid;
    } else if ('fd' in m && handle) {
      p.handles[m.fd] = handle;
      if (p.handles.filter(Boolean).length === p.pipes) {
        const id = m.id;
        p.child = new Child(p.pid!, p.handles, (signal) => this.host?.send({ id, kill: signal } satisfies KillRequest));
        p.resolve(p.child);
      }
    } else if ('exit' in m) {
      this.children.delete(m.id);
      this.updateRef();
      p.child?.exit({ code: m.exit[0], signal: m.exit[1] });
    }
  }

  /** The host died: every child died with it (parent-death signal). */
  private hostGone(host: ChildProcess): void {
    if (this.host === host) this.host = undefined;
    for (const [id, p] of this.children) {
      this.children.delete(id);
      if (p.child) p.child.exit({ code: null, signal: 'SIGKILL' });
      else p.reject(new Error('the spawn host exited'));
    }
  }

  close(): void {
    this.host?.disconnect();
    this.host = undefined;
  }
}

/** The host's module: compiled JavaScript next to this file, or TypeScript under tsx/vitest. */
function hostModule(): { file: string; execArgv: string[] } {
  const js = fileURLToPath(new URL('./spawn-host.js', import.meta.url));
  if (existsSync(js)) return { file: js, execArgv: [] };
  return { file: fileURLToPath(new URL('./spawn-host.ts', import.meta.url)), execArgv: ['--import', 'tsx'] };
}

let shared: Spawner | undefined;

/** The server's one spawner. `CORRAL_SPAWN_HOST=0` forks in-process instead. */
export function defaultSpawner(): Spawner {
  shared ??= process.env.CORRAL_SPAWN_HOST === '0' ? new LocalSpawner() : new HostSpawner();
  return shared;
}
