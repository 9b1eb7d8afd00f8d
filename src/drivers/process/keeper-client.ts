/**
 * A manager's side of the keeper (keeper.ts): connects to DATA/keeper/keeper.sock, starting
 * the keeper first when none answers, and is the process driver's Spawner for workloads and
 * their pasta.
 *
 * The pipes. Node cannot pass descriptors over a plain unix socket (SCM_RIGHTS is only on a
 * child's IPC channel, and the keeper is nobody's child after a restart), and the "pipes"
 * libuv gives a child are socketpairs, which nobody can open again. So the keeper gives each
 * child named FIFOs (DATA/keeper/run/<key>/fd0…, 0600, in a directory no workload sees): on
 * `spawn` and on `take` it stops reading, answers with their paths, and the manager opens its
 * own ends (O_NONBLOCK: an open never waits for the other side) and reads the output itself,
 * straight from the workload: one reader at a time, no relay.
 *
 *   const keeper = new KeeperClient('/var/lib/corral/keeper');
 *   const child = await keeper.spawn(argv, { pipes: 3, env, key: 'i1.1.ab', exitFile, spool, stop });
 *   const taken = await keeper.take('i1.1.ab')   // after a restart: its pipes, spool, pid
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, constants, existsSync, mkdirSync, openSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { childEnv } from '../../core/child-env.js';
import { KEEPER_PROTOCOL, readFrames, sendFrame, type KeeperSpawn, type KeeperStop, type KeptChild } from './keeper-protocol.js';
import { Child, type SpawnOptions, type Spawned, type Spawner } from './spawner.js';

/** How long a keeper may take to listen after it was started. */
const START_MS = 10_000;

export interface KeeperSpawnOptions extends SpawnOptions {
  key?: string;
  spool?: string;
  exitFile?: string;
  stop?: KeeperStop;
  meta?: Record<string, unknown>;
  /** The fence (keeper-protocol.ts): the keeper stops it past this time unless renewed. */
  fenceAt?: number;
}

/** A child the keeper keeps, as this manager sees it. */
export interface KeptSpawned extends Spawned {
  readonly key: string;
  readonly startTime: number;
}

/** A running child taken back after a restart: its pipes are ours now. */
export interface Taken {
  child: KeptSpawned;
  /** Where output was spooled while no manager held the pipes (takeSpool replays it). */
  spool: string | undefined;
}

interface Connection {
  sock: net.Socket;
  pid: number;
  startTime: number;
}

export class KeeperClient implements Spawner {
  readonly socketPath: string;
  private conn: Promise<Connection> | undefined;
  private nextRid = 1;
  private readonly pending = new Map<number, (m: Record<string, any>) => void>();
  private readonly children = new Map<string, Child & { key: string; startTime: number }>();

  constructor(readonly dir: string) {
    this.socketPath = path.join(dir, 'keeper.sock');
  }

  /** The keeper's pid and start time (connecting, or starting it, first). */
  async identity(): Promise<{ pid: number; startTime: number }> {
    const c = await this.connection();
    return { pid: c.pid, startTime: c.startTime };
  }

  async spawn(argv: string[], opts: KeeperSpawnOptions): Promise<KeptSpawned> {
    const c = await this.connection();
    const key = opts.key ?? `c-${randomBytes(6).toString('hex')}`;
    const req: KeeperSpawn = { key, argv, pipes: opts.pipes, detached: opts.detached, env: { ...opts.env }, cwd: opts.cwd, spool: opts.spool, exitFile: opts.exitFile, stop: opts.stop, meta: opts.meta, fenceAt: opts.fenceAt };
    const m = await this.request(c, { op: 'spawn', ...req });
    if (m.error) throw Object.assign(new Error(`spawn ${argv[0]}: ${m.error}`), { code: 'ENOENT' });
    return this.own(c, key, m);
  }

  /** Takes a running child back (after a restart), with our fence; undefined when the keeper no longer has it. */
  async take(key: string, fenceAt?: number): Promise<Taken | undefined> {
    const c = await this.connection();
    const m = await this.request(c, { op: 'take', key, fenceAt });
    if (m.gone) return undefined;
    if (m.error) throw new Error(`keeper: ${m.error}`);
    return { child: this.own(c, key, m), spool: typeof m.spool === 'string' ? m.spool : undefined };
  }

  async list(): Promise<KeptChild[]> {
    const c = await this.connection();
    return ((await this.request(c, { op: 'list' })).children ?? []) as KeptChild[];
  }

  /**
   * Renews the fence of every child this connection holds. Sent only over a connection that
   * is open already: a keeper we hold nothing of has nothing to renew (and is not started for it).
   */
  fence(until: number): void {
    void this.conn?.then((c) => sendFrame(c.sock, { op: 'fence', until }), () => undefined);
  }

  /** Lets go of a child's pipes without stopping it: the keeper reads them again. */
  release(key: string): void {
    const child = this.children.get(key);
    this.children.delete(key);
    for (const s of child?.stdio ?? []) s?.destroy();
    void this.conn?.then((c) => sendFrame(c.sock, { op: 'release', key }), () => undefined);
  }

  /** Closes the connection and our ends of the pipes: the keeper reads every held child's output again. */
  close(): void {
    for (const child of this.children.values()) for (const s of child.stdio) s?.destroy();
    this.children.clear();
    void this.conn?.then((c) => c.sock.end(), () => undefined);
    this.conn = undefined;
  }

  /**
   * Opens our own ends of the child's pipes (see the header) and tracks its exit. Stdin is
   * opened when first written to: most workloads never are, and each open pipe costs this
   * server a socket, a libuv handle and a descriptor (thousands of instances: megabytes). The
   * keeper holds a write end of every stdin FIFO and the child's own end is read-write, so a
   * stdin nobody opened is never at EOF.
   */
  private own(c: Connection, key: string, m: Record<string, any>): KeptSpawned {
    const paths = (m.paths ?? []) as string[];
    const stdio: net.Socket[] = [];
    paths.forEach((p, fd) => {
      if (fd > 0) stdio[fd] = openPipe(p, fd === 4);
    });
    const signal = (s: NodeJS.Signals | number) => sendFrame(c.sock, { op: 'kill', key, signal: s });
    const child = Object.assign(new Child(Number(m.pid), stdio, signal, paths[0] ? () => openPipe(paths[0]!, true) : undefined), { key, startTime: Number(m.startTime) });
    this.children.set(key, child);
    sendFrame(c.sock, { op: 'opened', key });
    this.updateRef(c);
    return child;
  }

  private request(c: Connection, m: object): Promise<Record<string, any>> {
    const rid = this.nextRid++;
    return new Promise((resolve, reject) => {
      if (c.sock.destroyed) return reject(new Error('the keeper connection is closed'));
      this.pending.set(rid, resolve);
      this.updateRef(c);
      sendFrame(c.sock, { ...m, rid });
    });
  }

  /** The connection keeps this process alive only while it waits for an answer or keeps children. */
  private updateRef(c: Connection): void {
    if (this.pending.size || this.children.size) c.sock.ref();
    else c.sock.unref();
  }

  private connection(): Promise<Connection> {
    this.conn ??= this.connect().catch((e: unknown) => {
      this.conn = undefined;
      throw e;
    });
    return this.conn;
  }

  private async connect(): Promise<Connection> {
    let sock = await tryConnect(this.socketPath);
    if (!sock) {
      startKeeper(this.dir);
      const deadline = Date.now() + START_MS;
      while (!sock && Date.now() < deadline) {
        await sleep(20);
        sock = await tryConnect(this.socketPath);
      }
      if (!sock) throw new Error(`the keeper did not start (see ${path.join(this.dir, 'keeper.log')})`);
    }
    const s = sock;
    s.on('error', () => undefined);
    let conn!: Connection;
    readFrames(s, (m) => {
      if (typeof m.rid === 'number') {
        const resolve = this.pending.get(m.rid);
        this.pending.delete(m.rid);
        resolve?.(m);
        if (conn) this.updateRef(conn);
      } else if (m.op === 'exit') {
        const child = this.children.get(String(m.key));
        this.children.delete(String(m.key));
        child?.exit({ code: m.code ?? null, signal: m.signal ?? null });
        if (conn) this.updateRef(conn);
      }
    });
    s.once('close', () => this.gone(s));
    const hello = await new Promise<Record<string, any>>((resolve, reject) => {
      const rid = this.nextRid++;
      this.pending.set(rid, resolve);
      s.once('close', () => reject(new Error('the keeper closed the connection')));
      sendFrame(s, { op: 'hello', rid, v: KEEPER_PROTOCOL });
    });
    if (hello.v !== KEEPER_PROTOCOL) {
      s.destroy();
      throw new Error(`the keeper speaks protocol ${hello.v}, this server ${KEEPER_PROTOCOL}`);
    }
    conn = { sock: s, pid: Number(hello.pid), startTime: Number(hello.startTime) };
    this.updateRef(conn);
    return conn;
  }

  /** The keeper went away: every child died with it (parent-death signals). */
  private gone(sock: net.Socket): void {
    void this.conn?.then((c) => {
      if (c.sock === sock) this.conn = undefined;
    }, () => undefined);
    for (const [rid, resolve] of this.pending) {
      this.pending.delete(rid);
      resolve({ error: 'the keeper connection closed' });
    }
    for (const [key, child] of this.children) {
      this.children.delete(key);
      child.exit({ code: null, signal: 'SIGKILL' });
    }
  }
}

/** Our own end of a child's FIFO (writable for stdin and the block fd 4, else readable). */
function openPipe(fifo: string, writable: boolean): net.Socket {
  const flags = (writable ? constants.O_WRONLY : constants.O_RDONLY) | constants.O_NONBLOCK;
  let own: number;
  try {
    own = openSync(fifo, flags);
  } catch {
    // ENXIO: a stdin nobody reads any more (the workload closed it); reading ends: gone.
    const closed = new net.Socket();
    closed.destroy();
    return closed;
  }
  return new net.Socket({ fd: own, readable: !writable, writable });
}

function tryConnect(socketPath: string): Promise<net.Socket | undefined> {
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    s.once('connect', () => {
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', () => resolve(undefined));
  });
}

/** Starts a keeper for `dir`: detached (own session), its output to keeper.log, a minimal environment. */
function startKeeper(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const logFd = openSync(path.join(dir, 'keeper.log'), 'a', 0o600);
  const { file, execArgv } = keeperModule();
  const child = spawn(process.execPath, [...execArgv, file, dir], { detached: true, stdio: ['ignore', logFd, logFd], env: childEnv() });
  closeSync(logFd);
  child.on('error', () => undefined);
  child.unref();
}

/** The keeper's module: compiled JavaScript next to this file, or TypeScript under tsx/vitest. */
function keeperModule(): { file: string; execArgv: string[] } {
  const js = fileURLToPath(new URL('./keeper.js', import.meta.url));
  if (existsSync(js)) return { file: js, execArgv: [] };
  return { file: fileURLToPath(new URL('./keeper.ts', import.meta.url)), execArgv: ['--import', 'tsx'] };
}
