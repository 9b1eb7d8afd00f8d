/**
 * What the keeper (keeper.ts) and a manager (keeper-client.ts) say to each other over
 * DATA/keeper/keeper.sock: one JSON object per line, both ways. Requests carry `rid`; the
 * answer carries the same `rid`. The keeper also pushes `exit` for the children a connection
 * holds.
 *
 *   manager → keeper  { op: 'hello', rid, v }                        → { rid, v, pid, startTime }
 *                     { op: 'spawn', rid, key, argv, pipes, … }      → { rid, pid, startTime, paths } | { rid, error }
 *                     { op: 'take', rid, key, fenceAt? }             → { rid, pid, startTime, paths, spool } | { rid, gone } | { rid, error }
 *                     { op: 'opened', key }   the manager has its own copies: the keeper drops its extra pipes (fd 3…)
 *                     { op: 'release', key }  the manager let go: the keeper reads the output again (spool)
 *                     { op: 'kill', key, signal }
 *                     { op: 'list', rid }                             → { rid, children: KeptChild[] }
 *                     { op: 'fence', until }  the new deadline of every child this connection holds (null: none)
 *   keeper → manager  { op: 'exit', key, code, signal }
 *
 * `paths` are the child's pipes, named FIFOs (DATA/keeper/run/<key>/fd0, fd1, …): the manager
 * opens its own ends of them (see keeper-client.ts).
 *
 * The fence (`fenceAt`, ms since the epoch, on spawn and take, renewed by `fence`): past it
 * the keeper stops the child (stop signal, grace, SIGKILL) and records reason "fenced" — its
 * manager has not renewed its leases for so long that a manager on another host may have
 * started a second copy (docs/instances.md, "The fence"). Absent: never (one manager alone).
 */
import { readFileSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';

/** Bumped when a message changes meaning; a server that cannot speak a keeper's version starts its own. */
export const KEEPER_PROTOCOL = 1;

/**
 * DATA/keeper/pid: "PID START_TIME", written once the keeper listens; read by `corral keeper`
 * (with the start time, a reused pid is never taken for the keeper).
 */
export const KEEPER_PID_FILE = 'pid';
export const keeperPidLine = (pid: number, startTime: number): string => `${pid} ${startTime}\n`;
export function parseKeeperPid(text: string): { pid: number; startTime: number } | undefined {
  const [pid, startTime] = text.trim().split(/\s+/).map(Number);
  return pid && startTime ? { pid, startTime } : undefined;
}

/** How the keeper stops a child when it is itself told to stop (SIGTERM). */
export interface KeeperStop {
  signal: string;
  graceMs: number;
  /** The child is an outer bwrap: signal what runs under it, not it (process-workload.ts). */
  sandboxed: boolean;
}

export interface KeeperSpawn {
  /** Unique among the keeper's children; the manager's name for it. */
  key: string;
  argv: string[];
  pipes: number;
  detached?: boolean;
  env: Record<string, string>;
  cwd?: string;
  /** Where output goes while no manager holds the pipes; undefined: it is read and dropped. */
  spool?: string;
  /** Where the exit status is written when the child ends. */
  exitFile?: string;
  stop?: KeeperStop;
  /** Opaque to the keeper: the driver's handle, reported by `list`. */
  meta?: Record<string, unknown>;
  /** The fence (see the header): stopped past this time unless renewed; absent: never. */
  fenceAt?: number;
}

export interface KeptChild {
  key: string;
  pid: number;
  startTime: number;
  meta?: Record<string, unknown>;
  /** Whether a connection holds its pipes now. */
  held: boolean;
}

/** What the keeper writes to a child's exitFile. */
export interface ExitRecord {
  key: string;
  pid: number;
  startTime: number;
  code: number | null;
  signal: string | null;
  /** The keeper itself stopped it (its SIGTERM, or the fence): like a server stop, not the workload's doing. */
  byKeeper?: boolean;
  /** Why the keeper stopped it, when not by its own SIGTERM. */
  reason?: 'fenced';
}

/** Calls `onMessage` for every complete line that parses as a JSON object. */
export function readFrames(sock: Socket, onMessage: (m: Record<string, any>) => void): void {
  let buf = '';
  sock.setEncoding('utf8');
  sock.on('data', (chunk: string) => {
    buf += chunk;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      let m: unknown;
      try {
        m = JSON.parse(line);
      } catch {
        continue;
      }
      if (m && typeof m === 'object') onMessage(m as Record<string, any>);
    }
  });
}

export function sendFrame(sock: Socket, m: object): void {
  if (!sock.destroyed && sock.writable) sock.write(`${JSON.stringify(m)}\n`);
}

/**
 * The output spool: frames of [stream: 1 byte (1 stdout, 2 stderr)][time: float64 ms]
 * [length: uint32][bytes], in the order read. The manager replays it into the instance's
 * log when it takes the pipes back.
 */
export const SPOOL_HEADER = 13;
export const STREAM_CODES = { stdout: 1, stderr: 2 } as const;

export function spoolFrame(stream: 'stdout' | 'stderr', at: number, data: Buffer): Buffer {
  const head = Buffer.alloc(SPOOL_HEADER);
  head.writeUInt8(STREAM_CODES[stream], 0);
  head.writeDoubleLE(at, 1);
  head.writeUInt32LE(data.length, 9);
  return Buffer.concat([head, data]);
}

export interface SpoolEntry {
  stream: 'stdout' | 'stderr';
  at: number;
  data: Buffer;
}

/**
 * Everything a spool holds, oldest first — a note of how much was dropped (`<spool>.dropped`,
 * the halves overwritten when it was full), the older half (`<spool>.old`), the newer
 * (`<spool>`) — and removes the files: what the next manager replays into the log.
 */
export function takeSpool(spool: string): SpoolEntry[] {
  const out: SpoolEntry[] = [];
  const read = (file: string): Buffer | undefined => {
    try {
      return readFileSync(file);
    } catch {
      return undefined;
    }
  };
  const dropped = Number(read(`${spool}.dropped`)?.toString() ?? 0);
  const halves = [read(`${spool}.old`), read(spool)];
  const entries = halves.flatMap((b) => (b ? [...spoolEntries(b)] : []));
  if (dropped > 0) {
    const note = `corral: ${dropped} bytes of output written while no manager ran were dropped (the spool keeps ${SPOOL_BYTES >> 20} MB)\n`;
    out.push({ stream: 'stderr', at: entries[0]?.at ?? Date.now(), data: Buffer.from(note) });
  }
  out.push(...entries);
  for (const f of [`${spool}.dropped`, `${spool}.old`, spool]) rmSync(f, { force: true });
  return out;
}

/** What a spool keeps at most: two halves; the older is dropped when the newer fills. */
export const SPOOL_BYTES = 16 << 20;

export function* spoolEntries(bytes: Buffer): Generator<SpoolEntry> {
  for (let off = 0; off + SPOOL_HEADER <= bytes.length; ) {
    const code = bytes.readUInt8(off);
    const at = bytes.readDoubleLE(off + 1);
    const len = bytes.readUInt32LE(off + 9);
    const data = bytes.subarray(off + SPOOL_HEADER, off + SPOOL_HEADER + len);
    off += SPOOL_HEADER + len;
    if (data.length < len) return; // cut short (the keeper died mid-write): drop the torn frame
    yield { stream: code === 2 ? 'stderr' : 'stdout', at, data };
  }
}
