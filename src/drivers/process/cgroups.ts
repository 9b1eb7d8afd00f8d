/**
 * One cgroup per workload (instance or job), for limits, accounting and "kill everything".
 *
 * Layout: `<mount>/corral/<server>/<name>` per controller (v1: memory, pids, cpu, cpuacct) or
 * once (v2, when memory, pids and cpu are enabled on the cgroup2 root). `<server>` is
 * `<pid>-<starttime>` of the corral process that made it, so a later server can tell leftovers
 * of a dead server (cleanupStaleCgroups) from the live cgroups of another server on the host.
 *
 * Use (the process driver and the job runner):
 *   const cg = await createCgroup('job-42', { memoryBytes: 256 << 20, pids: 64, cpus: 1 });
 *   // undefined when cgroups are unusable here (cgroupsUnavailableReason() says why)
 *   spawn(...launchArgv({ procsFiles: cg?.procsFiles }, argv))  // joins before exec
 *   … await cg.stats(); await cg.oomKilled(); await cg.killAll(); await cg.remove();
 */
// Cgroup files live in memory (cgroupfs): synchronous calls take microseconds, while the
// async ones queue behind every other file operation on libuv's small thread pool.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readdir, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { errors } from '../../core/errors.js';
import { cgroupLayout, detectCgroups, type CgroupLayout } from './detect.js';
import { isSameProcess, killQuietly, readProcStat } from './proc.js';

export interface CgroupLimits {
  memoryBytes?: number;
  /** Cores, e.g. 0.5. */
  cpus?: number;
  pids?: number;
}

export interface CgroupStats {
  memoryBytes?: number;
  memoryPeakBytes?: number;
  cpuSeconds?: number;
  pids?: number;
}

const CFS_PERIOD_US = 100_000;

export interface Cgroup {
  readonly name: string;
  readonly version: 'v1' | 'v2';
  /** One directory per controller (v1) or the single directory (v2). */
  readonly dirs: string[];
  /** Files a process writes its pid to in order to join; pass to launchArgv. */
  readonly procsFiles: string[];
  /** Host pids inside it now. */
  pids(): Promise<number[]>;
  stats(): Promise<CgroupStats>;
  /** The kernel's OOM killer killed something in it (the memory limit was hit). */
  oomKilled(): Promise<boolean>;
  /** SIGKILLs every process in it, until it is empty (a fork bomb cannot outrun it). */
  killAll(): Promise<void>;
  /** One SIGKILL for every current member, without waiting for them to be gone. */
  killMembers(): Promise<void>;
  /** Kills what is left, then removes the directories. */
  remove(): Promise<void>;
}

let serverTagCache: Promise<string> | undefined;

/** `<pid>-<starttime>` of this process. */
function serverTag(): Promise<string> {
  serverTagCache ??= readProcStat(process.pid).then((st) => `${process.pid}-${st?.startTime ?? 0}`);
  return serverTagCache;
}

const readText = (file: string): string | undefined => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
};
const readNumber = (file: string) => {
  const t = readText(file);
  return t === undefined ? undefined : Number(t.trim().split(/\s+/)[0]);
};
/** The value of `key` in a "key value" per-line file (memory.stat, cpu.stat, memory.events…). */
const readKey = (file: string, key: string) => {
  const m = readText(file)?.match(new RegExp(`^${key} (\\d+)$`, 'm'));
  return m ? Number(m[1]) : undefined;
};
const tryWrite = (file: string, value: string) => {
  try {
    writeFileSync(file, value);
  } catch {
    /* optional knob this kernel lacks */
  }
};

/** Names reach the file system: keep them to one safe path segment. */
function safeName(name: string): string {
  const cleaned = name.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 100);
  if (!cleaned || cleaned === '.' || cleaned === '..') throw new Error(`bad cgroup name: ${name}`);
  return cleaned;
}

/** The distinct mount points of the layout (v2 has one; v1 one per controller). */
const mountsOf = (layout: CgroupLayout) => [...new Set(Object.values(layout.mounts))];

/** v2 needs the controllers enabled in every ancestor's subtree_control. */
function enableV2Controllers(dirs: string[]): void {
  for (const dir of dirs) tryWrite(path.join(dir, 'cgroup.subtree_control'), '+memory +pids +cpu');
}

/** Per-server parent dirs already made (created once, on first use). */
const serverDirsMade = new Set<string>();

let warnedOnce = false;

/** Why workloads run without limits, or undefined when cgroups work. Logged once by callers. */
export async function cgroupsUnavailableReason(): Promise<string | undefined> {
  const s = await detectCgroups();
  if (s.version !== 'none' && s.writable) return undefined;
  return s.reason ?? 'cgroups are not usable';
}

/** Prints the "running without limits" warning once per process. */
export async function warnIfNoCgroups(log: (msg: string) => void): Promise<void> {
  const reason = await cgroupsUnavailableReason();
  if (reason && !warnedOnce) {
    warnedOnce = true;
    log(`cgroups unavailable, workloads run WITHOUT memory/cpu/pids limits: ${reason}`);
  }
}

/**
 * `owner`: the `<pid>-<starttime>` the cgroup is filed under; default this process. The
 * keeper's workloads are filed under the keeper (keeper.ts), so a server that dies or
 * restarts leaves them alone, and they become stale only when the keeper is gone.
 */
export async function createCgroup(name: string, limits: CgroupLimits, owner?: string): Promise<Cgroup | undefined> {
  const layout = await cgroupLayout();
  if (!layout) return undefined;
  const tag = owner ?? (await serverTag());
  const leaf = safeName(name);
  const dirs: Record<string, string> = {};
  for (const mount of mountsOf(layout)) {
    const serverDir = path.join(mount, 'corral', tag);
    if (!serverDirsMade.has(serverDir)) {
      mkdirSync(serverDir, { recursive: true });
      if (layout.version === 'v2') enableV2Controllers([mount, path.join(mount, 'corral'), serverDir]);
      serverDirsMade.add(serverDir);
    }
    const dir = path.join(serverDir, leaf);
    mkdirSync(dir, { recursive: true });
    dirs[mount] = dir;
  }
  const dirOf = (controller: string) => dirs[layout.mounts[controller]!];
  const cg = layout.version === 'v2' ? new CgroupV2(leaf, dirOf('memory')!) : new CgroupV1(leaf, dirOf);
  try {
    await cg.applyLimits(limits);
  } catch (err) {
    await cg.remove();
    throw errors.badRequest(`cannot apply limits ${JSON.stringify(limits)}: ${(err as Error).message}`);
  }
  return cg;
}

/** A cgroup made earlier by createCgroup(name, …, owner), e.g. by a server before a restart; undefined when gone. */
export async function openCgroup(name: string, owner: string): Promise<Cgroup | undefined> {
  const layout = await cgroupLayout();
  if (!layout) return undefined;
  const leaf = safeName(name);
  const dirs: Record<string, string> = {};
  for (const mount of mountsOf(layout)) dirs[mount] = path.join(mount, 'corral', safeName(owner), leaf);
  if (!Object.values(dirs).every((d) => existsSync(d))) return undefined;
  const dirOf = (controller: string) => dirs[layout.mounts[controller]!];
  return layout.version === 'v2' ? new CgroupV2(leaf, dirOf('memory')!) : new CgroupV1(leaf, dirOf);
}

abstract class BaseCgroup implements Cgroup {
  abstract readonly version: 'v1' | 'v2';
  abstract readonly dirs: string[];
  constructor(readonly name: string) {}
  abstract applyLimits(limits: CgroupLimits): Promise<void>;
  abstract stats(): Promise<CgroupStats>;
  abstract oomKilled(): Promise<boolean>;

  get procsFiles(): string[] {
    return this.dirs.map((d) => path.join(d, 'cgroup.procs'));
  }

  /**
   * One procs file is enough: the launcher joins every hierarchy before it execs, or fails,
   * and children inherit them all (v1's four copies of the same list were read each time:
   * seconds at a shutdown of 5,000 workloads).
   */
  async pids(): Promise<number[]> {
    const out: number[] = [];
    for (const line of (readText(path.join(this.dirs[0]!, 'cgroup.procs')) ?? '').split('\n')) if (line) out.push(Number(line));
    return out;
  }

  /** One SIGKILL for every current member, without waiting for them to be gone. */
  async killMembers(): Promise<void> {
    for (const pid of await this.pids()) killQuietly(pid, 'SIGKILL');
  }

  async killAll(): Promise<void> {
    // Kill until empty: a process forked between the read and the kill shows up next round,
    // and each round the pids limit keeps the set bounded. A killed process stays listed
    // until it is reaped: it is not signalled again, and the rounds slow down (5 ms, then up
    // to 50): with thousands stopped at once, the kernel takes a while, and rereading every
    // list every 5 ms (re-killing each dying member) cost the server a second of CPU per 2,000.
    // (Every eighth round all are signalled again: a pid reaped and reused within is not spared.)
    const killed = new Set<number>();
    for (let round = 0, waited = 0; waited < 5_000; round++) {
      const pids = await this.pids();
      if (!pids.length) return;
      if (round % 8 === 7) killed.clear();
      for (const pid of pids) {
        if (killed.has(pid)) continue;
        killed.add(pid);
        killQuietly(pid, 'SIGKILL');
      }
      const ms = Math.min(50, 5 << Math.min(round, 4));
      waited += ms;
      await sleep(ms);
    }
  }

  async remove(): Promise<void> {
    await this.killAll();
    for (const dir of this.dirs) {
      // A killed process stays a member until it is fully gone: retry briefly.
      for (let attempt = 0; attempt < 40; attempt++) {
        try {
          await rmdir(dir);
          break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') break;
          await sleep(25);
        }
      }
    }
  }
}

class CgroupV1 extends BaseCgroup {
  readonly version = 'v1' as const;
  readonly dirs: string[];
  constructor(name: string, private readonly dirOf: (controller: string) => string | undefined) {
    super(name);
    this.dirs = [...new Set(['memory', 'pids', 'cpu', 'cpuacct'].map(dirOf).filter((d): d is string => !!d))];
  }

  private file(controller: string, file: string): string | undefined {
    const d = this.dirOf(controller);
    return d ? path.join(d, file) : undefined;
  }

  async applyLimits(limits: CgroupLimits): Promise<void> {
    const mem = this.file('memory', 'memory.limit_in_bytes');
    if (limits.memoryBytes && mem) {
      writeFileSync(mem, String(limits.memoryBytes));
      // Swap off: memory+swap capped at the same number (only when swap accounting exists).
      const memsw = this.file('memory', 'memory.memsw.limit_in_bytes')!;
      if (existsSync(memsw)) writeFileSync(memsw, String(limits.memoryBytes));
      tryWrite(this.file('memory', 'memory.swappiness')!, '0');
    }
    const pids = this.file('pids', 'pids.max');
    if (limits.pids && pids) writeFileSync(pids, String(limits.pids));
    const quota = this.file('cpu', 'cpu.cfs_quota_us');
    if (limits.cpus && quota) {
      writeFileSync(this.file('cpu', 'cpu.cfs_period_us')!, String(CFS_PERIOD_US));
      writeFileSync(quota, String(Math.max(1000, Math.round(limits.cpus * CFS_PERIOD_US))));
    }
  }

  async stats(): Promise<CgroupStats> {
    const read = (controller: string, file: string) => {
      const f = this.file(controller, file);
      return f ? readNumber(f) : undefined;
    };
    const cpuNs = read('cpuacct', 'cpuacct.usage');
    // The peak and the process count are read only when asked for: the stats sampler, which
    // reads 200 instances a second at 5,000, wants memory and CPU alone (half the reads).
    return {
      memoryBytes: read('memory', 'memory.usage_in_bytes'),
      get memoryPeakBytes() {
        return read('memory', 'memory.max_usage_in_bytes');
      },
      cpuSeconds: cpuNs === undefined ? undefined : cpuNs / 1e9,
      get pids() {
        return read('pids', 'pids.current');
      },
    };
  }

  async oomKilled(): Promise<boolean> {
    const file = this.file('memory', 'memory.oom_control');
    return !!file && (readKey(file, 'oom_kill') ?? 0) > 0;
  }
}

class CgroupV2 extends BaseCgroup {
  readonly version = 'v2' as const;
  readonly dirs: string[];
  constructor(name: string, private readonly dir: string) {
    super(name);
    this.dirs = [dir];
  }

  async applyLimits(limits: CgroupLimits): Promise<void> {
    const w = (file: string, value: string) => writeFileSync(path.join(this.dir, file), value);
    if (limits.memoryBytes) {
      w('memory.max', String(limits.memoryBytes));
      tryWrite(path.join(this.dir, 'memory.swap.max'), '0');
    }
    if (limits.pids) w('pids.max', String(limits.pids));
    if (limits.cpus) w('cpu.max', `${Math.max(1000, Math.round(limits.cpus * CFS_PERIOD_US))} ${CFS_PERIOD_US}`);
  }

  async stats(): Promise<CgroupStats> {
    const p = (f: string) => path.join(this.dir, f);
    const usageUs = readKey(p('cpu.stat'), 'usage_usec');
    return {
      memoryBytes: readNumber(p('memory.current')),
      memoryPeakBytes: readNumber(p('memory.peak')),
      cpuSeconds: usageUs === undefined ? undefined : usageUs / 1e6,
      pids: readNumber(p('pids.current')),
    };
  }

  async oomKilled(): Promise<boolean> {
    return (readKey(path.join(this.dir, 'memory.events'), 'oom_kill') ?? 0) > 0;
  }

  override async killAll(): Promise<void> {
    tryWrite(path.join(this.dir, 'cgroup.kill'), '1');
    await super.killAll();
  }
}

/**
 * Kills and removes the cgroups of corral servers that are gone (SIGKILLed without a chance to
 * clean up). Cgroups of live servers — this one or another on the same host — are left alone.
 * Returns how many cgroup directories were removed (v1: one per controller).
 */
export async function cleanupStaleCgroups(): Promise<number> {
  const layout = await cgroupLayout();
  if (!layout) return 0;
  let removed = 0;
  for (const mount of mountsOf(layout)) {
    const base = path.join(mount, 'corral');
    const servers = await readdir(base).catch(() => [] as string[]);
    for (const server of servers) {
      const m = server.match(/^(\d+)-(\d+)$/);
      if (!m || (await isSameProcess(Number(m[1]), Number(m[2])))) continue;
      const serverDir = path.join(base, server);
      const leaves = (await readdir(serverDir, { withFileTypes: true }).catch(() => [])).filter((d) => d.isDirectory());
      for (const leaf of leaves) {
        const stale = new StaleCgroup(leaf.name, path.join(serverDir, leaf.name));
        await stale.remove();
        removed++;
      }
      await rmdir(serverDir).catch(() => undefined);
    }
  }
  return removed;
}

/** Just enough of a cgroup to kill and remove it (one directory of one hierarchy). */
class StaleCgroup extends BaseCgroup {
  readonly version = 'v1' as const;
  readonly dirs: string[];
  constructor(name: string, dir: string) {
    super(name);
    this.dirs = [dir];
  }
  async applyLimits(): Promise<void> {}
  async stats(): Promise<CgroupStats> {
    return {};
  }
  async oomKilled(): Promise<boolean> {
    return false;
  }
}

/** Removes this server's (empty) `corral/<server>` directories; call on shutdown. */
export async function releaseServerCgroups(): Promise<void> {
  const layout = await cgroupLayout();
  if (!layout) return;
  const tag = await serverTag();
  for (const mount of mountsOf(layout)) {
    const serverDir = path.join(mount, 'corral', tag);
    serverDirsMade.delete(serverDir);
    await rmdir(serverDir).catch(() => undefined);
  }
}
