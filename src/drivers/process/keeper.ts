/**
 * The keeper: one small node process per data directory that is the parent of every
 * process-driver workload (and of its pasta), so they outlive the manager — as dockerd
 * keeps containers when corral stops, and conmon/containerd-shim keep runc's.
 *
 *   node keeper.js DATA/keeper        (started detached, in its own session, by keeper-client.ts)
 *
 * It listens on DIR/keeper.sock (0600: the socket is the only way in; same user only) and
 * speaks keeper-protocol.ts. For each child it keeps:
 *  - its pipes: named FIFOs in DIR/run/<key>/ (fd0, fd1, …; 0600, in a directory no workload
 *    sees), so a manager can open its own ends by path after any restart. While a manager
 *    holds them the keeper does not read them at all: the manager reads the output straight
 *    from the pipe, as before the keeper existed, so the keeper is no hop on the log path. While no manager holds them, the
 *    keeper reads stdout/stderr itself and appends them, with their time, to the child's
 *    spool file (bounded; the oldest half is dropped with a note), which the next manager
 *    replays into the log. Its copy of stdin's write end keeps the workload from seeing EOF.
 *  - its exit status, written to the child's exitFile, so a manager that comes back after it
 *    ended records the real code.
 * Children are spawned with setsid and with bwrap --die-with-parent / setpriv --pdeathsig:
 * they die with the keeper, not with the manager.
 *
 * SIGTERM: every child gets its stop signal, then SIGKILL after its grace, in parallel; the
 * keeper writes their exits and leaves. The fence: a child past its deadline (keeper-protocol.ts)
 * is stopped the same way, alone, its exit recorded as "fenced". SIGINT and SIGHUP are ignored (a terminal's Ctrl-C
 * is the server's business). It also leaves when it has no child and no manager connected.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, constants, mkdirSync, openSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { allProcesses, descendants, descendantsIn, killQuietly, readProcStatSync, signalNumber, type ProcStat } from './proc.js';
import {
  KEEPER_PID_FILE,
  KEEPER_PROTOCOL,
  keeperPidLine,
  readFrames,
  sendFrame,
  spoolFrame,
  SPOOL_BYTES,
  type ExitRecord,
  type KeeperSpawn,
  type KeptChild,
} from './keeper-protocol.js';

/** Spool bytes per child while no manager runs: two halves; the older is dropped when the newer fills. */
const SPOOL_HALF_BYTES = SPOOL_BYTES / 2;
/** With nothing to keep and nobody connected, how long before the keeper leaves. */
const IDLE_EXIT_MS = 2_000;
/** After SIGKILL at its own stop, how long the keeper waits for exits before it leaves anyway. */
const KILL_SETTLE_MS = 3_000;
/** How often deadlines are checked: a fenced child is stopped at most this late. */
const FENCE_CHECK_MS = 500;

type Pipe = net.Socket & { _handle?: { fd?: number; reading?: boolean; readStop?: () => number } };

interface Kept {
  req: KeeperSpawn;
  child: ChildProcess;
  pid: number;
  startTime: number;
  /** The keeper's read ends of what the child writes (stdout, stderr, fd 3), by fd. */
  pipes: (Pipe | undefined)[];
  /** The keeper's write ends of what the child reads (stdin, fd 4), by fd. */
  writeFds: (number | undefined)[];
  /** The FIFOs, by fd: what a manager opens. */
  paths: string[];
  /** The connection that holds the pipes; undefined: the keeper reads them. */
  owner?: net.Socket;
  spoolFd?: number;
  spoolBytes: number;
  dropped: number;
  /** Stopped past this time (ms since the epoch) unless a manager renews it; undefined: never. */
  fenceAt?: number;
  /** Being stopped by the fence. */
  fenced?: boolean;
}

const dir = path.resolve(process.argv[2] ?? '.');
const socketPath = path.join(dir, 'keeper.sock');
const kept = new Map<string, Kept>();
const connections = new Set<net.Socket>();
const myStart = readProcStatSync(process.pid)?.startTime ?? 0;
let stopping = false;

function log(msg: string): void {
  process.stderr.write(`${new Date().toISOString()} keeper ${process.pid}: ${msg}\n`);
}

/** Stops libuv reading a pipe; what node already buffered goes to the spool. */
function stopReading(k: Kept, s: Pipe, stream: 'stdout' | 'stderr'): void {
  s.pause();
  s.removeAllListeners('data');
  if (s._handle?.reading) {
    s._handle.reading = false;
    s._handle.readStop?.();
  }
  for (let c = s.read() as Buffer | null; c !== null; c = s.read() as Buffer | null) spool(k, stream, c);
}

/** The keeper reads the output itself (no manager holds it). */
function startReading(k: Kept): void {
  const streams = [['stdout', k.pipes[1]], ['stderr', k.pipes[2]]] as const;
  for (const [stream, s] of streams) {
    if (!s || s.destroyed) continue;
    s.on('data', (c: Buffer) => spool(k, stream, c));
    s.resume();
  }
}

function spool(k: Kept, stream: 'stdout' | 'stderr', data: Buffer): void {
  const file = k.req.spool;
  if (!file || !data.length) return;
  try {
    if (k.spoolFd === undefined) {
      mkdirSync(path.dirname(file), { recursive: true });
      k.spoolFd = openSync(file, 'a', 0o600);
      k.spoolBytes = statSync(file).size;
    }
    if (k.spoolBytes + data.length > SPOOL_HALF_BYTES && k.spoolBytes > 0) {
      // Bounded: the older half goes; how much went is noted for the replay (takeSpool).
      closeSync(k.spoolFd);
      try {
        k.dropped += statSync(`${file}.old`).size;
        writeFileSync(`${file}.dropped`, String(k.dropped), { mode: 0o600 });
      } catch {
        /* no older half yet */
      }
      renameSync(file, `${file}.old`);
      k.spoolFd = openSync(file, 'a', 0o600);
      k.spoolBytes = 0;
    }
    // Synchronous on purpose: the spool is the only copy, and the manager reads it after take.
    k.spoolBytes += writeSync(k.spoolFd, spoolFrame(stream, Date.now(), data));
  } catch (e) {
    log(`spool ${file}: ${(e as Error).message}`);
  }
}

function closeSpool(k: Kept): void {
  if (k.spoolFd !== undefined) closeSync(k.spoolFd);
  k.spoolFd = undefined;
}

/** The child reads fd 0 (stdin) and 4 (bwrap's --block-fd); it writes the others. */
const childReads = (fd: number) => fd === 0 || fd === 4;

/**
 * A FIFO per fd. Opening order matters: a FIFO's non-blocking read end opens at once, and
 * then a blocking write end opens at once too. The child's stdin end is opened read-write
 * (Linux never blocks that open), so the child gets blocking descriptors as with pipe(2).
 */
function makePipes(key: string, count: number): { paths: string[]; childEnds: number[]; pipes: (Pipe | undefined)[]; writeFds: (number | undefined)[] } {
  const runDir = path.join(dir, 'run', key);
  mkdirSync(runDir, { recursive: true, mode: 0o700 });
  const paths = Array.from({ length: count }, (_, fd) => path.join(runDir, `fd${fd}`));
  for (const p of paths) rmSync(p, { force: true });
  const made = spawnSync('mkfifo', ['-m', '0600', ...paths], { env: { PATH: '/usr/bin:/bin' }, stdio: ['ignore', 'ignore', 'pipe'] });
  if (made.status !== 0) throw new Error(`mkfifo: ${made.stderr?.toString().trim() || made.error?.message || made.status}`);
  const childEnds: number[] = [];
  const pipes: (Pipe | undefined)[] = [];
  const writeFds: (number | undefined)[] = [];
  paths.forEach((p, fd) => {
    if (childReads(fd)) {
      childEnds[fd] = openSync(p, constants.O_RDWR);
      writeFds[fd] = openSync(p, constants.O_WRONLY | constants.O_NONBLOCK);
    } else {
      const mine = openSync(p, constants.O_RDONLY | constants.O_NONBLOCK);
      childEnds[fd] = openSync(p, constants.O_WRONLY);
      // Not read until nobody holds it (pauseOnCreate): no byte is read here that a manager would not see.
      const sock = new net.Socket({ fd: mine, readable: true, writable: false, pauseOnCreate: true } as net.SocketConstructorOpts) as Pipe;
      sock.on('error', () => undefined);
      pipes[fd] = sock;
    }
  });
  return { paths, childEnds, pipes, writeFds };
}

function closePipes(k: Kept, from = 0): void {
  k.pipes.forEach((p, fd) => fd >= from && p?.destroy());
  k.writeFds.forEach((w, fd) => {
    if (fd >= from && w !== undefined) {
      closeSync(w);
      k.writeFds[fd] = undefined;
    }
  });
}

function start(conn: net.Socket, rid: unknown, req: KeeperSpawn): void {
  if (!req.env || typeof req.env !== 'object' || !Array.isArray(req.argv) || !req.argv.length || typeof req.key !== 'string') {
    sendFrame(conn, { rid, error: 'a spawn needs key, argv and env (children never inherit one)' });
    return;
  }
  if (kept.has(req.key)) {
    sendFrame(conn, { rid, error: `key ${req.key} is taken` });
    return;
  }
  let made: ReturnType<typeof makePipes>;
  let child: ChildProcess;
  try {
    made = makePipes(req.key, Math.max(3, req.pipes));
  } catch (e) {
    sendFrame(conn, { rid, error: (e as Error).message });
    return;
  }
  const partial = { pipes: made.pipes, writeFds: made.writeFds };
  try {
    child = spawn(req.argv[0]!, req.argv.slice(1), { stdio: made.childEnds, detached: req.detached, env: req.env, cwd: req.cwd });
  } catch (e) {
    closePipes(partial as Kept);
    sendFrame(conn, { rid, error: (e as Error).message });
    return;
  } finally {
    for (const fd of made.childEnds) closeSync(fd);
  }
  if (child.pid === undefined) {
    closePipes(partial as Kept);
    child.once('error', (e) => sendFrame(conn, { rid, error: e.message }));
    return;
  }
  const k: Kept = { req, child, pid: child.pid, startTime: readProcStatSync(child.pid)?.startTime ?? 0, ...made, owner: conn, spoolBytes: 0, dropped: 0, fenceAt: deadline(req.fenceAt) };
  kept.set(req.key, k);
  child.once('exit', (code, signal) => ended(k, code, signal));
  sendFrame(conn, { rid, pid: k.pid, startTime: k.startTime, paths: k.paths });
}

function ended(k: Kept, code: number | null, signal: NodeJS.Signals | null): void {
  const record: ExitRecord = { key: k.req.key, pid: k.pid, startTime: k.startTime, code, signal, ...((stopping || k.fenced) && { byKeeper: true }), ...(k.fenced && { reason: 'fenced' as const }) };
  if (k.req.exitFile) {
    try {
      mkdirSync(path.dirname(k.req.exitFile), { recursive: true });
      writeFileSync(k.req.exitFile, JSON.stringify(record), { mode: 0o600 });
    } catch (e) {
      log(`exit file ${k.req.exitFile}: ${(e as Error).message}`);
    }
  }
  const finish = () => {
    closePipes(k);
    for (const p of k.paths) rmSync(p, { force: true });
    // A child nobody asked to remember (pasta): nothing of it stays.
    if (!k.req.exitFile && !k.req.spool) rmSync(path.join(dir, 'run', k.req.key), { recursive: true, force: true });
    closeSpool(k);
    kept.delete(k.req.key);
    if (k.owner) sendFrame(k.owner, { op: 'exit', key: k.req.key, code, signal });
    maybeLeave();
  };
  // Held by a manager: it reads what is left from its own copy. Otherwise drain into the
  // spool first (briefly: a detached grandchild may hold the pipe open for good).
  if (k.owner) return finish();
  const open = [k.pipes[1], k.pipes[2]].filter((p): p is Pipe => !!p && !p.destroyed && !p.readableEnded);
  void Promise.race([Promise.all(open.map((p) => new Promise((r) => p.once('close', r)))), sleep(200)]).then(finish);
}

function take(conn: net.Socket, rid: unknown, key: string, fenceAt: unknown): void {
  const k = kept.get(key);
  if (!k || k.fenced) return sendFrame(conn, { rid, gone: true });
  if (k.owner && k.owner !== conn && !k.owner.destroyed) return sendFrame(conn, { rid, error: 'another manager holds it' });
  // The taker's fence from now on (none: it is the only manager).
  k.fenceAt = deadline(fenceAt);
  if (!k.owner) {
    stopReading(k, k.pipes[1]!, 'stdout');
    if (k.pipes[2]) stopReading(k, k.pipes[2], 'stderr');
  }
  k.owner = conn;
  closeSpool(k);
  // The manager replays and removes the spool files (takeSpool): the next outage counts anew.
  k.dropped = 0;
  sendFrame(conn, { rid, pid: k.pid, startTime: k.startTime, paths: k.paths, spool: k.req.spool });
}

/** The manager let go of the pipes (detached, or gone): read them again. */
function release(k: Kept): void {
  if (!k.owner) return;
  k.owner = undefined;
  startReading(k);
}

function onMessage(conn: net.Socket, m: Record<string, any>): void {
  const k = typeof m.key === 'string' ? kept.get(m.key) : undefined;
  switch (m.op) {
    case 'hello':
      return sendFrame(conn, { rid: m.rid, v: KEEPER_PROTOCOL, pid: process.pid, startTime: myStart });
    case 'spawn':
      return start(conn, m.rid, m as unknown as KeeperSpawn);
    case 'take':
      return take(conn, m.rid, String(m.key), m.fenceAt);
    case 'fence':
      for (const c of kept.values()) if (c.owner === conn) c.fenceAt = deadline(m.until);
      return;
    case 'opened':
      // Fd 3… are one-shot (bwrap's info and block fds): the manager's copies are the ones.
      if (k?.owner === conn) closePipes(k, 3);
      return;
    case 'release':
      if (k?.owner === conn) release(k);
      return;
    case 'kill':
      try {
        k?.child.kill(m.signal as NodeJS.Signals);
      } catch {
        /* an unknown signal: nothing to do */
      }
      return;
    case 'list': {
      const children: KeptChild[] = [...kept.values()].map((c) => ({ key: c.req.key, pid: c.pid, startTime: c.startTime, meta: c.req.meta, held: !!c.owner }));
      return sendFrame(conn, { rid: m.rid, children });
    }
  }
}

let idleTimer: NodeJS.Timeout | undefined;
function maybeLeave(): void {
  clearTimeout(idleTimer);
  if (kept.size || connections.size) return;
  idleTimer = setTimeout(() => {
    if (kept.size || connections.size) return;
    leave(0);
  }, IDLE_EXIT_MS);
}

function leave(code: number): never {
  try {
    unlinkSync(socketPath);
  } catch {
    /* already gone */
  }
  process.exit(code);
}

/** A deadline from the wire: a number, or none. */
function deadline(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

const gone = (k: Kept) => new Promise<void>((r) => (k.child.exitCode !== null || k.child.signalCode !== null ? r() : k.child.once('exit', () => r())));

async function killAll(k: Kept, procs?: ProcStat[]): Promise<void> {
  const tree = procs ? descendantsIn(procs, k.pid, { group: true }) : await descendants(k.pid, { group: true });
  k.child.kill('SIGKILL');
  killQuietly(-k.pid, 'SIGKILL');
  for (const pid of tree) killQuietly(pid, 'SIGKILL');
}

/**
 * Its stop signal, SIGKILL after its grace; without a stop (pasta), SIGKILL at once. `procs`:
 * a scan of /proc made for many children at once (stopAll); without it, one is made.
 */
async function stopChild(k: Kept, procs?: ProcStat[]): Promise<void> {
  const stop = k.req.stop;
  if (!stop) return killAll(k);
  const num = signalNumber(stop.signal) ?? 15;
  const group = !stop.sandboxed;
  const targets = procs ? descendantsIn(procs, k.pid, { group }) : await descendants(k.pid, { group });
  if (!stop.sandboxed) k.child.kill(num);
  for (const pid of targets) if (pid !== k.pid) killQuietly(pid, num);
  const inTime = await Promise.race([gone(k).then(() => true), sleep(stop.graceMs, false)]);
  if (!inTime) await killAll(k);
}

/** Children past their fence: their manager went quiet, another may have started them elsewhere. */
function checkFences(): void {
  if (stopping) return;
  const now = Date.now();
  for (const k of kept.values()) {
    if (k.fenced || k.fenceAt === undefined || k.fenceAt > now) continue;
    k.fenced = true;
    log(`fence: ${k.req.key} (pid ${k.pid}) not renewed since ${new Date(k.fenceAt).toISOString()}; stopping it`);
    void stopChild(k);
  }
}

/** SIGTERM: every workload gets its stop signal and grace, in parallel; then the rest goes. */
async function stopAll(): Promise<void> {
  if (stopping) return;
  stopping = true;
  log(`stopping ${kept.size} children`);
  const t0 = performance.now();
  const children = [...kept.values()];
  // One scan of /proc for all (with thousands of sandboxes, each scan reads tens of thousands
  // of files): every child is signalled from it in one go.
  const procs = await allProcesses();
  const stopped = children.filter((k) => k.req.stop).map((k) => stopChild(k, procs));
  await Promise.all(children.filter((k) => !k.req.stop).map((k) => killAll(k, procs)));
  const signalled = performance.now() - t0;
  await Promise.all(stopped);
  await Promise.race([Promise.all(children.map(gone)), sleep(KILL_SETTLE_MS)]);
  log(`stopped ${children.length} children in ${Math.round(performance.now() - t0)} ms (all signalled after ${Math.round(signalled)} ms)`);
  // Let the exit handlers write their files.
  await sleep(50);
  leave(0);
}

function listen(): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const server = net.createServer((conn) => {
    connections.add(conn);
    clearTimeout(idleTimer);
    conn.on('error', () => undefined);
    readFrames(conn, (m) => onMessage(conn, m));
    conn.once('close', () => {
      connections.delete(conn);
      for (const k of kept.values()) if (k.owner === conn) release(k);
      maybeLeave();
    });
  });
  server.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EADDRINUSE') {
      log(`cannot listen on ${socketPath}: ${e.message}`);
      process.exit(1);
    }
    // Another keeper, or a socket left by a dead one: only the latter is replaced.
    const probe = net.connect(socketPath);
    probe.once('connect', () => {
      log('another keeper serves this directory; leaving');
      process.exit(0);
    });
    probe.once('error', () => {
      try {
        unlinkSync(socketPath);
      } catch {
        /* raced with another */
      }
      listen();
    });
  });
  const mask = process.umask(0o177);
  server.listen(socketPath, () => {
    process.umask(mask);
    chmodSync(socketPath, 0o600);
    writeFileSync(path.join(dir, KEEPER_PID_FILE), keeperPidLine(process.pid, myStart));
    log(`listening on ${socketPath}`);
    maybeLeave();
  });
}

process.on('SIGTERM', () => void stopAll());
setInterval(checkFences, FENCE_CHECK_MS).unref();
process.on('SIGINT', () => undefined);
process.on('SIGHUP', () => undefined);
listen();
