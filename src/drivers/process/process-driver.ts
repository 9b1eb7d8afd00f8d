/**
 * The embedded default driver: each workload is a child process of the corral server, in a
 * bubblewrap sandbox and in its own cgroup when cgroups can be created. Without a working
 * bwrap it fails closed: every workload is refused (503 driver_unavailable naming the fix),
 * unless the admin explicitly set drivers.process.sandbox: none, which is logged at warn
 * level on every start (and flagged by `corral doctor`). Without cgroups workloads run
 * without limits (also reported). docs/isolation.md says what each mode isolates.
 *
 * Network: with `network: true` the workload shares the host's network namespace and listens
 * on 127.0.0.1:PORT itself (the supervisor assigns the port). That isolates nothing on the
 * network side: it can reach every loopback service, corral's API and other instances'
 * ports included, which then must authenticate as they would against any local user. With
 * `network: false` it gets an empty namespace (no interfaces but a down loopback).
 *
 * Children never outlive the server: bwrap's --die-with-parent SIGKILLs the sandbox when the
 * server dies; without bwrap, setpriv --pdeathsig does it for the main process and adopt()
 * (and list() for cgroups of dead servers) kill whatever is left at the next start.
 */
// The start path uses sync fs calls on purpose: each takes microseconds, while async ones wait
// in libuv's small thread pool behind all other file I/O of a busy server.
import { mkdirSync, realpathSync } from 'node:fs';
import { access, realpath } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { childEnv } from '../../core/child-env.js';
import { errors } from '../../core/errors.js';
import type { Driver, Handle, Isolation, Mount, Workload, WorkloadSink, WorkloadSpec } from '../driver.js';
import { cleanupStaleCgroups, createCgroup, releaseServerCgroups, warnIfNoCgroups } from './cgroups.js';
import { detectCgroups, detectSandbox, sandboxChoice, UNSANDBOXED_WARNING } from './detect.js';
import { etcViewAt, type EtcView } from './etc-view.js';
import { launchArgv, type Rlimits } from './launcher.js';
import { killQuietly, readProcStat, readProcStatSync } from './proc.js';
import { attachPasta, DEFAULT_NETWORK, detectPasta, needsPasta, planNetwork, sandboxPid, type NetworkPolicy, type Pasta, type PastaSupport } from './network.js';
import { ProcessWorkload } from './process-workload.js';
import { sandboxArgv, type Bind } from './sandbox.js';
import { defaultSpawner, type Spawned, type Spawner } from './spawner.js';

export interface ProcessDriverOptions {
  /**
   * Host paths no workload may see, e.g. corral's data dir (which holds every instance's
   * dir, so this also hides other workloads' dirs). A workload's own dataDir and mounts
   * inside them stay visible: they were granted on purpose.
   */
  hide: string[];
  /** Where the sandboxes' copy of /etc is kept (etc-view.ts); default: binds from /etc itself. */
  etcRoot?: string;
  /**
   * false → never use bwrap: run workloads UNSANDBOXED (drivers.process.sandbox: none; tests,
   * benchmarks). Default: bwrap, and without a working one every workload is refused.
   */
  sandbox?: boolean;
  /** Path of bwrap (drivers.process.bwrap); default: found on PATH. */
  bwrap?: string;
  /** false → never create cgroups. Default: use them if they work. */
  cgroups?: boolean;
  /** Per-workload rlimits (applied to bwrap and inherited by the workload). */
  rlimits?: Rlimits;
  /** Maps `spec.image` (a runtime name) to extra read-only mounts; without it images are refused. */
  resolveImage?: (image: string) => Mount[] | undefined;
  /** Where warnings go (the server's logger). */
  warn?: (message: string) => void;
  /** How children are forked; default: the shared spawn host (spawner.ts). */
  spawner?: Spawner;
  /** Own network namespace per workload, outbound policy (network.ts); default: none out, not shared. */
  network?: NetworkPolicy;
}

const DRIVER = 'process';
interface Modes {
  bwrap?: string;
  /** Why every workload is refused (no working sandbox, none not chosen). */
  refused?: string;
  cgroups: boolean;
  setpriv?: string;
  /** Whether pasta works here (probed only when sandboxes have their own network). */
  pasta?: PastaSupport;
}

export class ProcessDriver implements Driver {
  readonly name = DRIVER;
  private readonly live = new Map<string, ProcessWorkload>();
  private modesCache?: Promise<Modes>;
  private hideReal?: Promise<string[]>;
  private staleCleaned?: Promise<unknown>;
  private readonly spawner: Spawner;

  /** The sandboxes' /etc (made in the background from now on). */
  private readonly etcView: EtcView | undefined;

  constructor(private readonly opts: ProcessDriverOptions) {
    this.spawner = opts.spawner ?? defaultSpawner();
    const warn = opts.warn ?? ((m: string) => process.emitWarning(m));
    this.etcView = opts.etcRoot ? etcViewAt(opts.etcRoot, (e) => warn(`sandbox /etc copy: ${(e as Error).message}`)) : undefined;
    this.etcView?.current();
    // Probe now, so "running unsandboxed / without limits" is logged when the server starts.
    void this.modes();
  }

  /** Decides once what this driver uses, warning about what it cannot. */
  private modes(): Promise<Modes> {
    this.modesCache ??= (async () => {
      const warn = this.opts.warn ?? ((m: string) => process.emitWarning(m));
      const choice = await sandboxChoice(this.opts.sandbox !== false, this.opts.bwrap);
      const bwrap = choice.kind === 'bwrap' ? choice.path : undefined;
      const refused = choice.kind === 'refused' ? choice.message : undefined;
      if (refused) warn(`instances and jobs are refused: ${refused}`);
      if (choice.kind === 'none') warn(UNSANDBOXED_WARNING);
      let cgroups = false;
      if (this.opts.cgroups !== false) {
        await warnIfNoCgroups(warn);
        const cg = await detectCgroups();
        cgroups = cg.version !== 'none' && cg.writable;
      }
      const setpriv = bwrap ? undefined : await findSetpriv();
      const pasta = bwrap && !this.policy.hostNetwork ? await detectPasta(bwrap, this.policy.pasta) : undefined;
      if (pasta && !pasta.available) warn(`instances with ports are refused (${pasta.reason}); see docs/isolation.md`);
      if (bwrap && this.policy.hostNetwork) warn('drivers.process.hostNetwork is true: workloads share the host network (UNSAFE: they reach every loopback service, corral and each other)');
      return { bwrap, refused, cgroups, setpriv, pasta };
    })();
    return this.modesCache;
  }

  private hidden(): Promise<string[]> {
    this.hideReal ??= Promise.all(this.opts.hide.map((p) => realpath(p).catch(() => path.resolve(p))));
    return this.hideReal;
  }

  async isolation(): Promise<Isolation> {
    const [sb, cg, modes] = await Promise.all([detectSandbox(this.opts.bwrap), detectCgroups(), this.modes()]);
    const sandboxed = !!modes.bwrap;
    const limited = modes.cgroups;
    const has = (c: string) => limited && cg.controllers.includes(c);
    const notes: string[] = [];
    if (sandboxed) {
      notes.push(`bubblewrap ${sb.version ?? ''}: own user, pid, ipc and uts namespaces; system dirs read-only; private /tmp; only its own data dir writable`.replace('  ', ' '));
      notes.push(this.policy.hostNetwork
        ? 'network: the host network is shared (drivers.process.hostNetwork: UNSAFE, loopback services reachable)'
        : `network: own namespace each; ports forwarded from 127.0.0.1 by pasta${modes.pasta?.available ? '' : ' (MISSING: instances with ports refused)'}; outbound: ${this.policy.outbound}`);
    } else if (modes.refused) {
      notes.push(`no sandbox: workloads are refused (${modes.refused})`);
    } else {
      notes.push("no sandbox (drivers.process.sandbox: none): workloads see the host file system and processes as the server's user");
    }
    if (limited) notes.push(`cgroups ${cg.version}: ${cg.controllers.join(', ')}`);
    else notes.push(`no cgroups (${this.opts.cgroups === false ? 'disabled' : cg.reason}): memory, CPU and pids limits are not enforced`);
    notes.push('disk: no kernel quota; corral measures each data dir on a timer and stops an instance over its diskBytes');
    return {
      filesystem: sandboxed,
      processes: sandboxed,
      network: sandboxed,
      memory: has('memory'),
      cpu: has('cpu'),
      pids: has('pids'),
      notes,
    };
  }

  /**
   * Refuses every spec while there is no sandbox (and none was not chosen), and one with
   * ports while pasta, which they need, is missing (network.ts).
   */
  async admit(req: { ports?: number } = {}): Promise<void> {
    const { refused, bwrap, pasta } = await this.modes();
    if (refused) throw errors.driverUnavailable(refused);
    if (bwrap && !this.policy.hostNetwork) needsPasta({ policy: this.policy, pasta, wantsNetwork: true, ports: req.ports ?? 0 });
  }

  async start(spec: WorkloadSpec, sink: WorkloadSink): Promise<Workload> {
    const modes = await this.modes();
    if (modes.refused) throw errors.driverUnavailable(modes.refused);
    const imageMounts = this.imageMounts(spec.image);
    mkdirSync(spec.dataDir, { recursive: true });
    const key = `${spec.instanceId}.${spec.generation}.${randomBytes(3).toString('hex')}`;
    const cgroup = modes.cgroups ? await createCgroup(key, spec.limits) : undefined;
    try {
      const net = planNetwork({ sandboxed: !!modes.bwrap, policy: this.policy, pasta: modes.pasta, wantsNetwork: spec.network, ports: spec.ports });
      if (net.env) spec = { ...spec, env: { ...spec.env, ...net.env } };
      const inner = modes.bwrap
        ? await this.sandboxed(modes.bwrap, spec, imageMounts, net.shareHost, !!net.pasta)
        : unsandboxedCommand(spec);
      const argv = launchArgv({ procsFiles: cgroup?.procsFiles, rlimits: this.opts.rlimits, setpriv: modes.setpriv }, inner.argv);
      const child = await this.spawner
        .spawn(argv, { pipes: net.pasta ? 5 : 3, detached: true, env: modes.bwrap ? childEnv() : inner.env, cwd: inner.cwd })
        .catch((err: Error) => {
          throw errors.driverUnavailable(`cannot start ${spec.command[0] ?? 'workload'}: ${err.message}`);
        });
      const pasta = net.pasta ? await this.attach(net.pasta, child, spec) : undefined;
      const handle: Handle = {
        driver: DRIVER,
        instanceId: spec.instanceId,
        generation: spec.generation,
        pid: child.pid,
        pgid: child.pid,
        startTime: 0,
        sandboxed: !!modes.bwrap,
        cgroup: cgroup?.name ?? null,
      };
      const workload = new ProcessWorkload({
        child,
        handle,
        sandboxed: !!modes.bwrap,
        cgroup,
        sink,
        pasta,
        onGone: () => this.live.delete(key),
      });
      // Recorded so adopt() can tell this process from a later one that reuses its pid.
      handle.startTime = readProcStatSync(child.pid)?.startTime ?? 0;
      this.live.set(key, workload);
      return workload;
    } catch (err) {
      await cgroup?.remove();
      throw err;
    }
  }

  private imageMounts(image: string | undefined): Mount[] {
    if (image === undefined) return [];
    const mounts = this.opts.resolveImage?.(image);
    if (!mounts) throw errors.badRequest(`the process driver has no runtime "${image}"`);
    return mounts;
  }

  private get policy(): NetworkPolicy {
    return this.opts.network ?? DEFAULT_NETWORK;
  }

  /**
   * pasta for the new sandbox's namespace (its pid comes on fd 3), then the workload may start
   * (fd 4): its ports and routes are there from its first instruction. On failure the sandbox goes.
   */
  private async attach(pasta: string, child: Spawned, spec: WorkloadSpec): Promise<Pasta> {
    try {
      const pid = await sandboxPid(child.stdio[3]!);
      const fwd = await attachPasta({ pasta, pid, ports: spec.ports, outbound: spec.network ? this.policy.outbound : 'none', spawner: this.spawner });
      child.stdio[4]!.end('go');
      return fwd;
    } catch (e) {
      child.kill('SIGKILL');
      await child.exited;
      throw errors.driverUnavailable(`cannot give ${spec.instanceId} its network: ${(e as Error).message}`);
    }
  }

  private async sandboxed(bwrap: string, spec: WorkloadSpec, imageMounts: Mount[], shareHost: boolean, reportPid: boolean) {
    const real = (m: Mount): Bind => {
      try {
        return { source: realpathSync(m.source), target: m.target };
      } catch {
        throw errors.badRequest(`mount source "${m.source}" does not exist`);
      }
    };
    const mounts = [...imageMounts, ...spec.mounts];
    const readOnly = mounts.filter((m) => m.readOnly).map(real);
    const writable = [real({ source: spec.dataDir, target: spec.dataMount, readOnly: false }), ...mounts.filter((m) => !m.readOnly).map(real)];
    const argv = sandboxArgv({
      bwrap,
      command: spec.command,
      env: spec.env,
      cwd: spec.cwd,
      writable,
      readOnly,
      network: shareHost,
      // A declared port below 1024 (a daemon's 80) in its own namespace: binding it there
      // touches nothing else. Only bwrap run by root can grant it, and only a workload that
      // declares such a port gets it: every other one runs with no capability at all.
      bindLowPorts: !shareHost && process.getuid?.() === 0 && spec.ports.some((p) => p.containerPort < 1024),
      ...(reportPid && { infoFd: 3, blockFd: 4 }),
      hostname: hostnameOf(spec.instanceId),
      hide: await this.hidden(),
      etc: this.etcView?.current(),
    });
    return { argv, env: spec.env, cwd: '/' };
  }

  /**
   * The process driver's children die with the server, so nothing is ever re-adopted. What a
   * handle recorded is killed if it somehow still runs (unsandboxed grandchildren that left
   * the main process), then undefined says "start it again".
   */
  async adopt(handle: Handle, _sink?: WorkloadSink): Promise<Workload | undefined> {
    await this.cleanStale();
    const pgid = Number(handle.pgid ?? handle.pid);
    if (handle.driver !== DRIVER || !(pgid > 1)) return undefined;
    // The kernel never hands out a pid that is still some group's id. So if process `pgid`
    // is gone, a group with that id can only be our leftover; if it is alive, the group is
    // ours only when it is the very process we started (same start time) — otherwise the
    // id was reused by a stranger after all of ours had died.
    const leader = await readProcStat(pgid);
    if (!leader || leader.startTime === Number(handle.startTime)) killQuietly(-pgid, 'SIGKILL');
    return undefined;
  }

  async list(): Promise<Handle[]> {
    await this.cleanStale();
    return [...this.live.values()].filter((w) => w.alive).map((w) => w.handle);
  }

  /** Cgroups of corral servers that died (SIGKILL) are emptied and removed, once. */
  private cleanStale(): Promise<unknown> {
    this.staleCleaned ??= this.opts.cgroups === false ? Promise.resolve() : cleanupStaleCgroups().catch(() => 0);
    return this.staleCleaned;
  }

  async close(): Promise<void> {
    await Promise.all([...this.live.values()].map((w) => w.stop('SIGKILL', 0).then(() => w.finished)));
    await releaseServerCgroups();
  }
}

/** Hostname inside the sandbox: the instance id cut to a valid label. */
function hostnameOf(id: string): string {
  return id.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 63) || 'corral';
}

/**
 * Without bwrap there are no mounts: the workload sees host paths. Paths that name a mount
 * target (cwd, and env values such as HOME=/data) are rewritten to the host source so the
 * same spec works in both modes.
 */
function unsandboxedCommand(spec: WorkloadSpec) {
  const binds = [{ source: spec.dataDir, target: spec.dataMount }, ...spec.mounts];
  const toHost = (p: string): string => {
    for (const b of binds) {
      if (p === b.target) return b.source;
      if (p.startsWith(b.target.endsWith('/') ? b.target : `${b.target}/`)) return path.join(b.source, p.slice(b.target.length));
    }
    return p;
  };
  const env = Object.fromEntries(Object.entries(spec.env).map(([k, v]) => [k, toHost(v)]));
  return { argv: spec.command, env, cwd: toHost(spec.cwd) };
}

/** setpriv (util-linux) sets PR_SET_PDEATHSIG for the unsandboxed main process. */
function findSetpriv(): Promise<string | undefined> {
  return access('/usr/bin/setpriv').then(() => '/usr/bin/setpriv', () => undefined);
}
