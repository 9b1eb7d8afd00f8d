/**
 * Reading /proc: who is whose child, which process group, and when a process started (so a
 * recorded pid is only trusted while the same process still owns it — pids get reused).
 */
import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
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
 * Files of /proc open at once during a scan. With 5,000 instances there are 15,000+
 * processes: opening every stat file together took the server to its open-files limit.
 */
const SCAN_CONCURRENCY = 64;

async function scanProc(): Promise<ProcStat[]> {
  const pids = (await readdir('/proc').catch(() => [] as string[])).filter((n) => /^\d+$/.test(n)).map(Number);
  const out: ProcStat[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < pids.length) {
      const stat = await readProcStat(pids[next++]!);
      if (stat) out.push(stat);
    }
  };
  await Promise.all(Array.from({ length: Math.min(SCAN_CONCURRENCY, pids.length) }, worker));
  return out;
}

/**
 * Every descendant of `root` (not root itself), found by walking parent links, plus — with
 * `group` — every member of process group `root` (children that were reparented after their
 * parent died keep their group). One scan of /proc.
 */
export async function descendants(root: number, opts: { group?: boolean } = {}): Promise<number[]> {
  const procs = await allProcesses();
  const children = new Map<number, number[]>();
  for (const p of procs) {
    const list = children.get(p.ppid) ?? [];
    list.push(p.pid);
    children.set(p.ppid, list);
  }
  const out = new Set<number>();
  const queue = [...(children.get(root) ?? [])];
  if (opts.group) queue.push(...procs.filter((p) => p.pgid === root && p.pid !== root).map((p) => p.pid));
  while (queue.length) {
    const pid = queue.shift()!;
    if (out.has(pid)) continue;
    out.add(pid);
    queue.push(...(children.get(pid) ?? []));
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
