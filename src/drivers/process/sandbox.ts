/**
 * Builds the bubblewrap command line for one workload (an instance or a job). Pure and
 * synchronous so a job pool can build argvs in a hot loop; everything it needs from the host
 * (which /lib* are symlinks, which /etc entries exist) is probed once and cached.
 *
 * What a sandbox built here gets:
 *  - a read-only root (unless `readOnlyRoot: false`);
 *  - new user, pid, ipc and uts namespaces, and net unless `network` is true (the old shared
 *    host network, an explicit unsafe choice: see network.ts), no capabilities;
 *  - `--die-with-parent` (the whole sandbox is SIGKILLed when the corral server dies) and
 *    `--new-session` (no TIOCSTI into the server's terminal);
 *  - /usr, /bin, /sbin, /lib* read-only and a safe subset of /etc read-only (no shadow,
 *    sudoers, ssh keys…); a fresh /proc, a minimal /dev, a private /tmp (tmpfs);
 *  - the workload's writable dirs bound read-write, extra read-only mounts, `--chdir`;
 *  - `--clearenv` then exactly `env`; hostname `hostname`;
 *  - every path in `hide` that would otherwise be visible through a bind (corral's data dir,
 *    other workloads' dirs) covered by an empty tmpfs.
 *
 * Example (a job):
 *   const argv = sandboxArgv({ bwrap, command: ['python3', 'main.py'], env: { PATH: '/usr/bin' },
 *     cwd: '/work', writable: [{ source: jobDir, target: '/work' }], readOnly: [],
 *     network: false, hostname: 'job', hide: [corralDataDir] });
 *   spawn(argv[0], argv.slice(1), …)   // or launchArgv(…) from launcher.ts to add cgroup + rlimits
 */
import { existsSync, lstatSync, readlinkSync } from 'node:fs';
import path from 'node:path';

export interface Bind {
  /** Host path (should be a real path: symlinks resolved). */
  source: string;
  /** Path inside the sandbox. */
  target: string;
}

export interface SandboxSpec {
  /** Path of the bwrap binary (detectSandbox().path). */
  bwrap: string;
  /** argv of the workload; argv[0] is looked up on PATH inside the sandbox. */
  command: string[];
  /** The complete environment of the workload (nothing is inherited). */
  env: Record<string, string>;
  /** Working directory inside the sandbox. */
  cwd: string;
  /** Read-write binds (an instance's data dir, a job's work dir). */
  writable: Bind[];
  /** Extra read-only binds (runtimes, sources). */
  readOnly: Bind[];
  /**
   * false → its own network namespace (only its own loopback; network.ts may attach pasta to
   * it). true → the host's network namespace, shared: every loopback service is reachable.
   */
  network: boolean;
  /** bwrap writes `{"child-pid": …}` (the sandbox's pid 1, on the host) to this fd: network.ts. */
  infoFd?: number;
  /** The sandbox waits, namespaces made, until something can be read from this fd (or EOF). */
  blockFd?: number;
  /** Keep CAP_NET_BIND_SERVICE (ports below 1024): only with its own network namespace. */
  bindLowPorts?: boolean;
  hostname?: string;
  /** Host paths that must stay invisible even when a bind would expose them. */
  hide?: string[];
  /** Size cap of the private /tmp in bytes (tmpfs pages count against the memory cgroup too). */
  tmpBytes?: number;
  /**
   * Remount the sandbox's root (bwrap's own tmpfs holding the mount points) read-only, so the
   * workload can write only to its writable binds, /tmp and /dev/shm. Default true.
   */
  readOnlyRoot?: boolean;
  /**
   * A prepared copy of the allowed /etc entries (etc-view.ts), bound as one mount. Without
   * it each entry is bound on its own, which costs ~6 ms more per sandbox.
   */
  etc?: string;
}

/** /etc entries a program plausibly needs; secrets (shadow, sudoers, ssh, ssl/private) are not here. */
export const ETC_ALLOWED = [
  'alternatives', 'ca-certificates', 'ca-certificates.conf', 'debian_version', 'fonts', 'gai.conf',
  'group', 'host.conf', 'hostname', 'hosts', 'inputrc', 'ld.so.cache', 'ld.so.conf', 'ld.so.conf.d',
  'locale.alias', 'locale.gen', 'localtime', 'mime.types', 'nsswitch.conf', 'os-release', 'passwd',
  'chromium.d', 'perl', 'protocols', 'python3', 'python3.11', 'resolv.conf', 'ruby', 'services', 'ssl/certs',
  'ssl/openssl.cnf', 'texmf', 'timezone', 'ucf.conf', 'xdg', 'java-17-openjdk', 'R', 'nodejs',
];

const SYSTEM_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];

interface HostLayout {
  /** [flag, a, b] triples: --ro-bind src dst or --symlink target link. */
  args: string[];
  /** What those binds make visible, read-only. */
  binds: Bind[];
}

let hostLayout: HostLayout | undefined;
let etcLayout: HostLayout | undefined;

/** Probes (once) how this host lays out its system dirs: merged-/usr symlinks stay symlinks. */
function systemLayout(): HostLayout {
  if (hostLayout) return hostLayout;
  const args: string[] = [];
  const binds: Bind[] = [];
  for (const dir of SYSTEM_DIRS) {
    let st;
    try {
      st = lstatSync(dir);
    } catch {
      continue;
    }
    if (st.isSymbolicLink()) args.push('--symlink', readlinkSync(dir), dir);
    else if (st.isDirectory()) {
      args.push('--ro-bind', dir, dir);
      binds.push({ source: dir, target: dir });
    }
  }
  hostLayout = { args, binds };
  return hostLayout;
}

/** The allowed /etc entries bound one by one (when no etc view is given). */
function etcEntries(): HostLayout {
  if (etcLayout) return etcLayout;
  const args: string[] = [];
  const binds: Bind[] = [];
  for (const entry of ETC_ALLOWED) {
    const p = path.join('/etc', entry);
    if (!existsSync(p)) continue;
    args.push('--ro-bind', p, p);
    binds.push({ source: p, target: p });
  }
  etcLayout = { args, binds };
  return etcLayout;
}

const isInside = (child: string, parent: string): boolean => {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
};

/**
 * tmpfs overlays for every hidden path that some bind would expose. A hidden path that is a
 * bind's own source or lies above it is fine: that bind was granted on purpose (a workload's
 * data dir lives inside corral's data dir).
 */
function hideOverlays(binds: Bind[], hide: string[]): string[] {
  const out: string[] = [];
  for (const h of hide) {
    for (const b of binds) {
      if (h === b.source || !isInside(h, b.source)) continue;
      out.push('--tmpfs', path.join(b.target, path.relative(b.source, h)));
    }
  }
  return out;
}

/** The full argv: [bwrap, …options, '--', …command]. */
export function sandboxArgv(spec: SandboxSpec): string[] {
  const system = systemLayout();
  const etc = spec.etc ? { args: ['--ro-bind', spec.etc, '/etc'], binds: [{ source: spec.etc, target: '/etc' }] } : etcEntries();
  const args: string[] = [
    spec.bwrap,
    '--unshare-user', '--unshare-pid', '--unshare-ipc', '--unshare-uts',
    ...(spec.network ? [] : ['--unshare-net']),
    // bwrap run by root keeps every capability (within the new user namespace) unless told.
    '--cap-drop', 'ALL',
    ...(spec.bindLowPorts && !spec.network ? ['--cap-add', 'CAP_NET_BIND_SERVICE'] : []),
    '--die-with-parent', '--new-session',
    ...(spec.infoFd === undefined ? [] : ['--info-fd', String(spec.infoFd)]),
    ...(spec.blockFd === undefined ? [] : ['--block-fd', String(spec.blockFd)]),
    ...system.args,
    ...etc.args,
    '--proc', '/proc', '--dev', '/dev',
    ...(spec.tmpBytes ? ['--size', String(spec.tmpBytes)] : []), '--tmpfs', '/tmp',
  ];
  // Overlays go right after the binds they cover, so a writable bind that lies inside a hidden
  // path (a data dir inside corral's data dir) is mounted on top of the overlay, not under it.
  const hide = spec.hide ?? [];
  for (const b of spec.readOnly) args.push('--ro-bind', b.source, b.target);
  args.push(...hideOverlays([...system.binds, ...etc.binds, ...spec.readOnly], hide));
  for (const b of spec.writable) args.push('--bind', b.source, b.target);
  args.push(...hideOverlays(spec.writable, hide));
  if (spec.hostname) args.push('--hostname', spec.hostname);
  args.push('--chdir', spec.cwd, '--clearenv');
  for (const [k, v] of Object.entries(spec.env)) args.push('--setenv', k, v);
  // Last of the mount operations: every mount point above is created first.
  if (spec.readOnlyRoot !== false) args.push('--remount-ro', '/');
  args.push('--', ...spec.command);
  return args;
}
