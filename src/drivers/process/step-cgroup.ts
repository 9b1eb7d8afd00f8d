/**
 * The cgroup a job's processes run in, inside a reusable sandbox (job-sandbox.ts).
 *
 * A sandbox has two cgroups: its "park" (bwrap, and init until its first step) and this one.
 * Before the first step the server moves init here, where it then stays: what it forks for
 * each step of a job (a compile, a run, one case of a batch) is born here and cannot leave
 * (no cgroupfs in the sandbox). When the step ends, every process here but init is killed
 * until none is left, and the cgroup is checked to hold init alone — so nothing of a step
 * survives into the next, and the counters (CPU, memory peak, OOM kills) are the step's.
 *
 * Init used to go back to the park after each step and in again before the next: 8 writes
 * to `cgroup.procs` per step on cgroup v1 (four hierarchies), ~18 µs of CPU and ~34 µs of
 * wall time each here (measured), for nothing the check above does not already give. What
 * staying costs: init (dash, well under a MiB) counts against the step's pids limit (one
 * pid) and, for what it allocates between steps, its memory limit; should a step fill the
 * memory limit with something no kill frees (tmpfs files) the OOM killer may pick init —
 * the sandbox then dies and the step ends `memory`, as it would have anyway.
 *
 * The cgroup is made once per sandbox and reused: making and removing one per step cost
 * ~1.2 ms of the server's CPU per job on cgroup v1 (four hierarchies; measured). Its
 * counters are reset per step instead: v1 resets cpuacct.usage and memory.max_usage_in_bytes
 * by writing to them; v2 reads cpu.stat and memory.events as differences, and memory.peak
 * through a file descriptor reset per step (Linux ≥ 6.12; older kernels report the highest
 * peak since the sandbox started). The memory peak is the growth over the step's start:
 * page cache an earlier step of the same sandbox brought in stays charged here, and is not
 * the step's own.
 */
import { closeSync, openSync, readFileSync, readSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCgroup, type Cgroup, type CgroupLimits } from './cgroups.js';
import { cgroupLayout } from './detect.js';
import { killQuietly } from './proc.js';

export interface StepStats {
  cpuMs: number | null;
  memoryPeakBytes: number | null;
  oomKilled: boolean;
}

export interface StepEnd extends StepStats {
  /** Processes the step left behind that were killed. */
  killed: number;
  /** The cgroup held nothing once init was out: false means the sandbox must not be reused. */
  empty: boolean;
}

const read = (file: string): string | undefined => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
};
const num = (file: string) => {
  const t = read(file);
  return t === undefined ? undefined : Number(t.trim().split(/\s+/)[0]);
};
const key = (file: string, name: string) => {
  const m = read(file)?.match(new RegExp(`^${name} (\\d+)$`, 'm'));
  return m ? Number(m[1]) : undefined;
};
const write = (file: string, value: string) => {
  try {
    writeFileSync(file, value);
    return true;
  } catch {
    return false;
  }
};

/** How a step's counters are read on this cgroup version. */
interface Counters {
  /** Resets (or notes the start values of) the counters. */
  begin(): void;
  end(): StepStats;
  close(): void;
}

function v1Counters(memoryDir: string | undefined, cpuacctDir: string | undefined): Counters {
  let baseUsage = 0;
  let baseOom = 0;
  const m = (f: string) => (memoryDir ? path.join(memoryDir, f) : undefined);
  return {
    begin() {
      if (cpuacctDir) write(path.join(cpuacctDir, 'cpuacct.usage'), '0');
      if (memoryDir) {
        write(m('memory.max_usage_in_bytes')!, '0');
        baseUsage = num(m('memory.usage_in_bytes')!) ?? 0;
        baseOom = key(m('memory.oom_control')!, 'oom_kill') ?? 0;
      }
    },
    end() {
      const ns = cpuacctDir ? num(path.join(cpuacctDir, 'cpuacct.usage')) : undefined;
      const peak = memoryDir ? num(m('memory.max_usage_in_bytes')!) : undefined;
      const oom = memoryDir ? (key(m('memory.oom_control')!, 'oom_kill') ?? 0) : 0;
      return {
        cpuMs: ns === undefined ? null : Math.round(ns / 1000) / 1000,
        memoryPeakBytes: peak === undefined ? null : Math.max(0, peak - baseUsage),
        oomKilled: oom > baseOom,
      };
    },
    close() {},
  };
}

function v2Counters(dir: string): Counters {
  const f = (name: string) => path.join(dir, name);
  let baseUs = 0;
  let baseOom = 0;
  let baseUsage = 0;
  // A written memory.peak fd reports the peak since that write (Linux ≥ 6.12).
  let peakFd: number | undefined;
  try {
    peakFd = openSync(f('memory.peak'), 'r+');
  } catch {
    peakFd = undefined;
  }
  const readPeak = (): number | undefined => {
    if (peakFd === undefined) return num(f('memory.peak'));
    const buf = Buffer.alloc(64);
    const n = readSync(peakFd, buf, 0, 64, 0);
    return Number(buf.subarray(0, n).toString().trim());
  };
  return {
    begin() {
      baseUs = key(f('cpu.stat'), 'usage_usec') ?? 0;
      baseOom = key(f('memory.events'), 'oom_kill') ?? 0;
      baseUsage = num(f('memory.current')) ?? 0;
      if (peakFd !== undefined) {
        try {
          writeSync(peakFd, 'reset\n');
        } catch {
          /* an older kernel: the peak since the cgroup was made */
        }
      }
    },
    end() {
      const us = key(f('cpu.stat'), 'usage_usec');
      const peak = readPeak();
      return {
        cpuMs: us === undefined ? null : (us - baseUs) / 1000,
        memoryPeakBytes: peak === undefined || Number.isNaN(peak) ? null : Math.max(0, peak - baseUsage),
        oomKilled: (key(f('memory.events'), 'oom_kill') ?? 0) > baseOom,
      };
    },
    close() {
      if (peakFd !== undefined) closeSync(peakFd);
      peakFd = undefined;
    },
  };
}

export class StepCgroup {
  /** The init that lives here once moved in (0: none yet). */
  private member = 0;

  private constructor(
    private readonly cg: Cgroup,
    private readonly counters: Counters,
  ) {}

  /** undefined when cgroups are unusable here (then sandboxes are not reused). */
  static async create(name: string, limits: CgroupLimits): Promise<StepCgroup | undefined> {
    const cg = await createCgroup(name, limits);
    if (!cg) return undefined;
    if (cg.version === 'v2') return new StepCgroup(cg, v2Counters(cg.dirs[0]!));
    const layout = await cgroupLayout();
    const dirUnder = (controller: string) => {
      const mount = layout?.mounts[controller];
      return mount ? cg.dirs.find((d) => d.startsWith(`${mount}/`)) : undefined;
    };
    return new StepCgroup(cg, v1Counters(dirUnder('memory'), dirUnder('cpuacct')));
  }

  /** Starts the step's counters (moving `initPid` in the first time): what init forks next is the step. */
  begin(initPid: number): void {
    this.counters.begin();
    if (this.member === initPid) return;
    for (const f of this.cg.procsFiles) writeFileSync(f, String(initPid));
    this.member = initPid;
  }

  /**
   * Ends the step: kills every process here but init until none is left (a fork bomb cannot
   * outrun it: each round the pids limit bounds what is left), and checks, in every
   * hierarchy, that init alone is left.
   */
  async end(initPid: number): Promise<StepEnd> {
    let killed = 0;
    for (let round = 0; round < 400; round++) {
      const n = await this.killAllBut(initPid);
      if (!n) break;
      killed += n;
      await sleep(round < 20 ? 1 : 10);
    }
    const empty = (await this.cg.pids()).every((p) => p === initPid);
    return { ...this.counters.end(), killed, empty };
  }

  /**
   * One SIGKILL for every process in it but `pid`; returns how many. One hierarchy's list is
   * enough: every process is in all of them (it joins them all before it runs, its children
   * are born in them); the final check after a step reads them all.
   */
  async killAllBut(pid: number): Promise<number> {
    let left: number[] = [];
    try {
      left = readFileSync(this.cg.procsFiles[0]!, 'utf8').split('\n').filter(Boolean).map(Number).filter((p) => p !== pid);
    } catch {
      left = (await this.cg.pids()).filter((p) => p !== pid);
    }
    for (const p of left) killQuietly(p, 'SIGKILL');
    return left.length;
  }

  /** The counters of a step whose sandbox died (nothing to move or check). */
  endDead(): StepStats {
    return this.counters.end();
  }

  /** Kills what is left and removes it. */
  async remove(): Promise<void> {
    this.counters.close();
    await this.cg.remove();
  }
}
