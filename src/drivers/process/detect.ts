/**
 * What the process driver can use on this machine: a working bubblewrap (present AND able to
 * create user/pid namespaces here — a binary that cannot unshare is useless) and writable
 * cgroups. Each probe runs once per process; results are cached because `corral doctor`, the
 * driver and the job runner all ask.
 *
 * Without a working bwrap the driver fails closed (`sandboxChoice`): it refuses instances and
 * jobs, unless the admin explicitly chose `drivers.process.sandbox: none`.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, rmdir, access } from 'node:fs/promises';
import { constants } from 'node:fs';
import path from 'node:path';
import { childEnv } from '../../core/child-env.js';

export interface SandboxSupport {
  available: boolean;
  path?: string;
  version?: string;
  reason?: string;
}

export interface CgroupSupport {
  version: 'v1' | 'v2' | 'none';
  /** v2: the cgroup2 mount; v1: the directory holding one mount per controller. */
  root?: string;
  controllers: string[];
  writable: boolean;
  reason?: string;
}

/** Where each controller lives, for cgroups.ts. v2 has one mount for all of them. */
export interface CgroupLayout {
  version: 'v1' | 'v2';
  /** controller name → mount point (v2: the same mount for every controller). */
  mounts: Record<string, string>;
}

/** Controllers the driver uses; cpuacct is v1's CPU-time counter. */
const WANTED_V1 = ['memory', 'pids', 'cpu', 'cpuacct'] as const;
const WANTED_V2 = ['memory', 'pids', 'cpu'] as const;

function run(file: string, args: string[], timeoutMs = 5000): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, env: childEnv() }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, out: `${stdout}${stderr}`.trim() });
    });
  });
}

export async function findOnPath(name: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

const sandboxCache = new Map<string, Promise<SandboxSupport>>();

/** Whether bwrap works here: `bwrapPath` (drivers.process.bwrap) or the one on PATH. */
export function detectSandbox(bwrapPath?: string): Promise<SandboxSupport> {
  const key = bwrapPath ?? '';
  let probe = sandboxCache.get(key);
  if (!probe) sandboxCache.set(key, (probe = probeSandbox(bwrapPath)));
  return probe;
}

/** What the process driver runs workloads in, from drivers.process.sandbox and what works here. */
export type SandboxChoice =
  | { kind: 'bwrap'; path: string; version?: string }
  /** drivers.process.sandbox: none — the admin's explicit, unsafe choice. */
  | { kind: 'none' }
  /** No working sandbox and no explicit opt-out: workloads are refused with this message. */
  | { kind: 'refused'; message: string };

/** `sandbox: false` means the admin chose none; otherwise bwrap must work or work is refused. */
export async function sandboxChoice(sandbox: boolean, bwrapPath?: string): Promise<SandboxChoice> {
  if (!sandbox) return { kind: 'none' };
  const s = await detectSandbox(bwrapPath);
  if (s.available && s.path) return { kind: 'bwrap', path: s.path, version: s.version };
  return { kind: 'refused', message: noSandboxMessage(s.reason ?? 'bubblewrap is not available') };
}

/** Why the process driver refuses work, with both fixes. */
export const noSandboxMessage = (reason: string) =>
  `the process driver has no working sandbox (${reason}): install bubblewrap (apt-get install bubblewrap), ` +
  'or set drivers.process.sandbox: none to run workloads UNSANDBOXED as the server\'s user (unsafe)';

/** The line logged at every start, and by doctor, when the admin turned the sandbox off. */
export const UNSANDBOXED_WARNING =
  'drivers.process.sandbox is none: instances and jobs run UNSANDBOXED as the server\'s user and can read ' +
  "its files (signing key, database) and other workloads'; set it to bwrap once bubblewrap is installed";

async function probeSandbox(bwrapPath: string | undefined): Promise<SandboxSupport> {
  const bwrap = bwrapPath ?? (await findOnPath('bwrap'));
  if (!bwrap) return { available: false, reason: 'bwrap not found on PATH' };
  try {
    await access(bwrap, constants.X_OK);
  } catch {
    return { available: false, path: bwrap, reason: `${bwrap} is not an executable file` };
  }
  const versionRun = await run(bwrap, ['--version']);
  const version = versionRun.out.replace(/^bubblewrap\s*/, '') || undefined;
  // The smallest sandbox the driver relies on: new user, pid, ipc, uts and net namespaces.
  const probe = await run(bwrap, [
    '--unshare-user', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-net',
    '--die-with-parent', '--ro-bind', '/', '/', '--proc', '/proc', '--dev', '/dev',
    '--', 'true',
  ]);
  if (probe.code !== 0) {
    return { available: false, path: bwrap, version, reason: `bwrap cannot create namespaces here: ${probe.out || `exit ${probe.code}`}` };
  }
  return { available: true, path: bwrap, version };
}

interface MountLine {
  mountPoint: string;
  fsType: string;
  options: string[];
}

async function readMounts(): Promise<MountLine[]> {
  const text = await readFile('/proc/self/mounts', 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).map((line) => {
    const [, mountPoint = '', fsType = '', opts = ''] = line.split(' ');
    return { mountPoint, fsType, options: opts.split(',') };
  });
}

let layoutCache: Promise<{ support: CgroupSupport; layout?: CgroupLayout }> | undefined;

export async function detectCgroups(): Promise<CgroupSupport> {
  return (await probeCgroupsCached()).support;
}

/** The mounts behind detectCgroups(), or undefined when cgroups are not usable. */
export async function cgroupLayout(): Promise<CgroupLayout | undefined> {
  return (await probeCgroupsCached()).layout;
}

function probeCgroupsCached() {
  layoutCache ??= probeCgroups();
  return layoutCache;
}

/** Tries to create and remove a directory where the driver will put its cgroups. */
async function canCreateUnder(dir: string): Promise<string | undefined> {
  const probe = path.join(dir, `corral-probe-${process.pid}`);
  try {
    await mkdir(probe);
    await rmdir(probe);
    return undefined;
  } catch (err) {
    return `cannot create a cgroup under ${dir}: ${(err as Error).message}`;
  }
}

async function probeCgroups(): Promise<{ support: CgroupSupport; layout?: CgroupLayout }> {
  const mounts = await readMounts();
  // v2 first, when the controllers we need are enabled on its root (a pure v2 host or a hybrid
  // host whose controllers moved to the unified hierarchy).
  const v2 = mounts.find((m) => m.fsType === 'cgroup2');
  let v2Reason: string | undefined;
  if (v2) {
    const controllers = (await readFile(path.join(v2.mountPoint, 'cgroup.controllers'), 'utf8').catch(() => ''))
      .trim().split(/\s+/).filter(Boolean);
    const missing = WANTED_V2.filter((c) => !controllers.includes(c));
    if (!missing.length) {
      const denied = await canCreateUnder(v2.mountPoint);
      const support: CgroupSupport = { version: 'v2', root: v2.mountPoint, controllers, writable: !denied, reason: denied };
      if (!denied) {
        const layout: CgroupLayout = { version: 'v2', mounts: Object.fromEntries(WANTED_V2.map((c) => [c, v2.mountPoint])) };
        return { support, layout };
      }
      v2Reason = denied;
    } else {
      v2Reason = `cgroup2 at ${v2.mountPoint} lacks ${missing.join(', ')} (bound to v1 hierarchies)`;
    }
  }
  const v1Mounts: Record<string, string> = {};
  for (const m of mounts) {
    if (m.fsType !== 'cgroup') continue;
    for (const c of WANTED_V1) if (m.options.includes(c) && !v1Mounts[c]) v1Mounts[c] = m.mountPoint;
  }
  const controllers = Object.keys(v1Mounts);
  if (!controllers.length) {
    return { support: { version: 'none', controllers: [], writable: false, reason: v2Reason ?? 'no cgroup filesystem mounted' } };
  }
  const root = path.dirname(v1Mounts.memory ?? v1Mounts[controllers[0]!]!);
  const denials = (await Promise.all(controllers.map((c) => canCreateUnder(v1Mounts[c]!)))).filter(Boolean);
  const missing = WANTED_V1.filter((c) => !v1Mounts[c]);
  const reason = [...denials, missing.length ? `v1 controllers missing: ${missing.join(', ')}` : '']
    .filter(Boolean).join('; ') || undefined;
  const writable = denials.length === 0;
  const support: CgroupSupport = { version: 'v1', root, controllers, writable, reason };
  return writable ? { support, layout: { version: 'v1', mounts: v1Mounts } } : { support };
}
