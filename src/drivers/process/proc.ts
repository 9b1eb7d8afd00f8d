/**
 * Reading /proc: who is whose child, which process group, and when a process started (so a
 * recorded pid is only trusted while the same process still owns it — pids get reused).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { constants } from 'node:os';

export interface ProcStat {
  pid: number;
  comm: string;
  ppid: number;
  pgid: number;
  /** Clock ticks after boot; with the pid it identifies one process for good. */
  startTime: number;
}

function parseProcStat(pid: number, text: string): ProcStat {
  // comm may hold spaces and parentheses: it ends at the last ')'.
  const close = text.lastIndexOf(')');
  const comm = text.slice(text.indexOf('(') + 1, close);
  const f = text.slice(close + 2).split(' ');
  // f[0] is field 3 (state); field n is f[n - 3].
  return { pid, comm, ppid: Number(f[1]), pgid: Number(f[2]), startTime: Number(f[19]) };
}

export async function readProcStat(pid: number): Promise<ProcStat | undefined> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  return text ? parseProcStat(pid, text) : undefined;
}

/** For hot paths: /proc reads take microseconds, the thread pool may take milliseconds. */
export function readProcStatSync(pid: number): ProcStat | undefined {
  try {
    return parseProcStat(pid, readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** True while `pid` is still the process that started at `startTime`. */
export async function isSameProcess(pid: number, startTime: number): Promise<boolean> {
  const st = await readProcStat(pid);
  return st !== undefined && st.startTime === startTime;
}

/**
 * Every process on the machine, from a scan that started after the call (so a process
 * started just before is never missed). Callers at the same moment share scans: stopping
 * 500 instances at shutdown must not read /proc 500 times over. A call while a scan runs
 * waits for the next one, which serves every caller that arrived meanwhile.
 */
export function allProcesses(): Promise<ProcStat[]> {
  if (!inFlight) return startScan();
  queued ??= inFlight
    .then(
      () => undefined,
      () => undefined,
    )
    .then(() => {
      queued = undefined;
      return startScan();
    });
  return queued;
}

let inFlight: Promise<ProcStat[]> | undefined;
let queued: Promise<ProcStat[]> | undefined;

function startScan(): Promise<ProcStat[]> {
  const scan: Promise<ProcStat[]> = scanProc().finally(() => {
    if (inFlight === scan) inFlight = undefined;
  });
  inFlight = scan;
  return scan;
}

/**
 * Stat files read in one go before the scan yields to the event loop. They are read
 * synchronously (one file open at a time, a few microseconds each in memory): with 5,000
 * instances there are 15,000+ processes, and an asynchronous read per file (open, fstat,
 * read, close through libuv's thread pool) cost the server seconds of CPU per scan; opening
 * them all together took it to its open-files limit.
 */
const SCAN_CHUNK = 256;

async function scanProc(): Promise<ProcStat[]> {
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return [];
  }
  const out: ProcStat[] = [];
  let inChunk = 0;
  for (const name of names) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue; // pids only
    const stat = readProcStatSync(Number(name));
    if (stat) out.push(stat);
    if (++inChunk === SCAN_CHUNK) {
      inChunk = 0;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  return out;
}

/** Who is whose child and who is in which group, built once per scan (all its callers share it). */
interface Tree {
  children: Map<number, number[]>;
  groups: Map<number, number[]>;
}
const trees = new WeakMap<ProcStat[], Tree>();

function treeOf(procs: ProcStat[]): Tree {
  let tree = trees.get(procs);
  if (!tree) {
    tree = { children: new Map(), groups: new Map() };
    const add = (m: Map<number, number[]>, key: number, pid: number) => {
      const list = m.get(key);
      if (list) list.push(pid);
      else m.set(key, [pid]);
    };
    for (const p of procs) {
      add(tree.children, p.ppid, p.pid);
      add(tree.groups, p.pgid, p.pid);
    }
    trees.set(procs, tree);
  }
  return tree;
}

/**
 * Every descendant of `root` (not root itself), found by walking parent links, plus — with
 * `group` — every member of process group `root` (children that were reparented after their
 * parent died keep their group). One scan of /proc, and one index of it for every caller
 * that shares the scan: stopping 5,000 workloads at once built a map of 15,000 processes
 * 5,000 times.
 */
export async function descendants(root: number, opts: { group?: boolean } = {}): Promise<number[]> {
  return descendantsIn(await allProcesses(), root, opts);
}

/** `descendants` in a scan the caller made (allProcesses): for many roots at one moment, one scan for all. */
export function descendantsIn(procs: ProcStat[], root: number, opts: { group?: boolean } = {}): number[] {
  const { children, groups } = treeOf(procs);
  const out = new Set<number>();
  const queue = [...(children.get(root) ?? [])];
  if (opts.group) for (const pid of groups.get(root) ?? []) if (pid !== root) queue.push(pid);
  for (let i = 0; i < queue.length; i++) {
    const pid = queue[i]!;
    if (out.has(pid)) continue;
    out.add(pid);
    for (const c of children.get(pid) ?? []) queue.push(c);
  }
  return [...out];
}

export function signalNumber(signal: string): number | undefined {
  return (constants.signals as Record<string, number>)[signal];
}

export function signalName(n: number): string | undefined {
  return Object.entries(constants.signals).find(([, v]) => v === n)?.[0];
}

/** process.kill that ignores "no such process" (it may have just exited). */
export function killQuietly(pid: number, signal: NodeJS.Signals | number): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}
