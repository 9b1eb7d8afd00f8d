/**
 * A container's cgroup, read straight from this machine's cgroup file system (the engine runs
 * here: the docker driver bind-mounts from it). It gives a job its CPU time, memory peak and
 * OOM kills, and tells how many tasks the container holds, in microseconds each; the engine's
 * stats endpoint takes tens of milliseconds. Found from the container's init pid
 * (/proc/<pid>/cgroup) and this process's mounts (/proc/self/mountinfo); `of()` answers
 * undefined when the files cannot be reached (corral in a container of its own, say), and the
 * job runner then runs each container for one job only (job-runner.ts).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const V1_CONTROLLERS = ['memory', 'cpuacct', 'pids'] as const;
type Controller = (typeof V1_CONTROLLERS)[number];

const readText = (file: string): string | undefined => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
};
const readNumber = (file: string): number | undefined => {
  const t = readText(file)?.trim();
  return t === undefined || t === '' ? undefined : Number(t.split(/\s+/)[0]);
};
/** The value of `key` in a "key value" per-line file (memory.events, cpu.stat, memory.oom_control). */
const readKey = (file: string, key: string): number | undefined => {
  const m = readText(file)?.match(new RegExp(`^${key} (\\d+)$`, 'm'));
  return m ? Number(m[1]) : undefined;
};

interface Mount {
  /** The part of the hierarchy mounted there ('/' unless in another cgroup namespace's view). */
  root: string;
  point: string;
}

/** cgroup v1 mounts by controller, and the v2 mount, as this process sees them. */
function cgroupMounts(): { v1: Partial<Record<Controller, Mount>>; v2?: Mount } {
  const v1: Partial<Record<Controller, Mount>> = {};
  let v2: Mount | undefined;
  for (const line of (readText('/proc/self/mountinfo') ?? '').split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const f = left.split(' ');
    const [fsType, , superOptions = ''] = right.split(' ');
    const mount = { root: f[3]!, point: f[4]! };
    if (fsType === 'cgroup2') v2 ??= mount;
    else if (fsType === 'cgroup') for (const c of V1_CONTROLLERS) if (superOptions.split(',').includes(c)) v1[c] ??= mount;
  }
  return { v1, v2 };
}

/** Where the cgroup at `cgroupPath` of a hierarchy appears under `mount`, if it does. */
function under(mount: Mount | undefined, cgroupPath: string | undefined): string | undefined {
  if (!mount || cgroupPath === undefined) return undefined;
  const root = mount.root === '/' ? '' : mount.root;
  if (root && cgroupPath !== root && !cgroupPath.startsWith(`${root}/`)) return undefined;
  return path.join(mount.point, cgroupPath.slice(root.length));
}

export class ContainerCgroup {
  private constructor(
    readonly version: 'v1' | 'v2',
    /** v1: one dir per controller; v2: the same dir for all. */
    private readonly dirs: Record<Controller, string>,
  ) {}

  /** The cgroup of the container whose init has host pid `pid`, or undefined when it cannot be read. */
  static of(pid: number): ContainerCgroup | undefined {
    const paths = new Map<string, string>();
    for (const line of (readText(`/proc/${pid}/cgroup`) ?? '').split('\n')) {
      const m = /^\d+:([^:]*):(.*)$/.exec(line);
      if (m) for (const name of m[1]!.split(',')) paths.set(name, m[2]!);
    }
    const mounts = cgroupMounts();
    const v1 = Object.fromEntries(V1_CONTROLLERS.map((c) => [c, under(mounts.v1[c], paths.get(c))])) as Record<Controller, string | undefined>;
    if (V1_CONTROLLERS.every((c) => v1[c] && readText(path.join(v1[c]!, 'tasks')) !== undefined)) {
      return new ContainerCgroup('v1', v1 as Record<Controller, string>);
    }
    const dir = under(mounts.v2, paths.get(''));
    if (dir && readText(path.join(dir, 'pids.current')) !== undefined && readText(path.join(dir, 'memory.peak')) !== undefined) {
      return new ContainerCgroup('v2', { memory: dir, cpuacct: dir, pids: dir });
    }
    return undefined;
  }

  private file(c: Controller, name: string): string {
    return path.join(this.dirs[c], name);
  }

  /** CPU time used by everything that ran in it, in nanoseconds. */
  cpuNs(): number | undefined {
    if (this.version === 'v1') return readNumber(this.file('cpuacct', 'cpuacct.usage'));
    const us = readKey(this.file('cpuacct', 'cpu.stat'), 'usage_usec');
    return us === undefined ? undefined : us * 1000;
  }

  /** The highest memory use since the container started or the last resetPeak(). */
  memoryPeakBytes(): number | undefined {
    return readNumber(this.file('memory', this.version === 'v1' ? 'memory.max_usage_in_bytes' : 'memory.peak'));
  }

  /** Starts the memory peak over from the current use; false when the kernel (or our rights) do not allow it. */
  resetPeak(): boolean {
    try {
      writeFileSync(this.file('memory', this.version === 'v1' ? 'memory.max_usage_in_bytes' : 'memory.peak'), this.version === 'v1' ? '0' : 'reset');
      return true;
    } catch {
      return false;
    }
  }

  /** How many times the kernel's OOM killer killed a process in it. */
  oomKills(): number | undefined {
    return this.version === 'v1' ? readKey(this.file('memory', 'memory.oom_control'), 'oom_kill') : readKey(this.file('memory', 'memory.events'), 'oom_kill');
  }

  /** Processes and threads in it now (zombies not yet reaped included). */
  tasks(): number | undefined {
    return readNumber(this.file('pids', 'pids.current'));
  }
}
