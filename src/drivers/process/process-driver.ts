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
 * With the keeper (keeperDir; drivers.process.keeper, the default) workloads are the keeper's
 * children and outlive the server: adopt() takes them back after a restart, and with several
 * managers the keeper's fence stops them once their manager went quiet (docs/instances.md).
 * Without it children never outlive the server: bwrap's --die-with-parent SIGKILLs the sandbox
 * when the server dies; without bwrap, setpriv --pdeathsig does it for the main process and
 * adopt() (and list() for cgroups of dead servers) kill whatever is left at the next start.
 */
// The start path uses sync fs calls on purpose: each takes microseconds, while async ones wait
// in libuv's small thread pool behind all other file I/O of a busy server.
import { existsSync, mkdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { access, realpath } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { childEnv } from '../../core/child-env.js';
import { errors } from '../../core/errors.js';
import type { Driver, Handle, Isolation, Mount, Workload, WorkloadSink, WorkloadSpec } from '../driver.js';
import { cleanupStaleCgroups, createCgroup, openCgroup, releaseServerCgroups, warnIfNoCgroups, type Cgroup } from './cgroups.js';
import { detectCgroups, detectSandbox, sandboxChoice, UNSANDBOXED_WARNING } from './detect.js';
import { etcViewAt, type EtcView } from './etc-view.js';
import { launchArgv, type Rlimits } from './launcher.js';
import { isSameProcess, killQuietly, readProcStat } from './proc.js';
import { KeeperClient, type KeptSpawned } from './keeper-client.js';
import { takeSpool, type ExitRecord } from './keeper-protocol.js';
import { attachPasta, DEFAULT_NETWORK, detectPasta, needsPasta, pastaOf, planNetwork, sandboxPid, type NetworkPolicy, type Pasta, type PastaSupport } from './network.js';
import { exitStatus, ProcessWorkload } from './process-workload.js';
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
  /**
   * The keeper's directory (DATA/keeper; drivers.process.keeper): workloads are children of
   * the keeper (keeper.ts) and outlive this server. Undefined: they die with the server.
   */
  keeperDir?: string;
}

/** Stop signal and grace when the spec says none (the supervisor always does). */
const DEFAULT_STOP = { signal: 'SIGTERM', graceMs: 10_000 };
/** A renewed fence is sent to the keepers once it moved this much (renewals come every third of a lease). */
const FENCE_RESEND_MS = 1_000;

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
  private readonly keeper: KeeperClient | undefined;
  /** Keepers of other data dirs on this host (a dead manager's, or ours before it was turned off). */
  private readonly otherKeepers = new Map<string, KeeperClient>();
  /** The fence our kept workloads get (fence()); undefined: none, this manager is alone. */
  private fenceAt: number | undefined;

  /** The sandboxes' /etc (made in the background from now on). */
  private readonly etcView: EtcView | undefined;

  constructor(private readonly opts: ProcessDriverOptions) {
    this.spawner = opts.spawner ?? defaultSpawner();
    this.keeper = opts.keeperDir ? new KeeperClient(opts.keeperDir) : undefined;
    const warn = opts.warn ?? ((m: string) => process.emitWarning(m));
    this.etcView = opts.etcRoot ? etcViewAt(opts.etcRoot, (e) => warn(`sandbox /etc copy: ${(e as Error).message}`)) : undefined;
    this.etcView?.current();
    // Probe now, so "running unsandboxed / without limits" is logged when the server starts.
    void this.modes();
    // And reach (or start) the keeper now: the first instance does not wait for a node process
    // to start (a second or more on a loaded machine, longer than a proxy waits for its manager).
    this.keeper?.identity().catch((e: unknown) => warn(`the keeper did not start: ${(e as Error).message}`));
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
    const keeper = this.keeper;
    const kept = keeper ? await keeper.identity() : undefined;
    // A keeper's workloads are filed under the keeper: a server that dies leaves them be.
    const cgroupOwner = kept ? `${kept.pid}-${kept.startTime}` : undefined;
    const cgroup = modes.cgroups ? await createCgroup(key, spec.limits, cgroupOwner) : undefined;
    const base: Handle = {
      driver: DRIVER,
      instanceId: spec.instanceId,
      generation: spec.generation,
      sandboxed: !!modes.bwrap,
      cgroup: cgroup?.name ?? null,
      ...(keeper && kept && { keeper: keeper.socketPath, keeperPid: kept.pid, keeperStart: kept.startTime, key, cgroupOwner: cgroupOwner ?? null, host: hostIdentity() }),
    };
    const runDir = keeper ? path.join(keeper.dir, 'run', key) : undefined;
    try {
      const net = planNetwork({ sandboxed: !!modes.bwrap, policy: this.policy, pasta: modes.pasta, wantsNetwork: spec.network, ports: spec.ports });
      if (net.env) spec = { ...spec, env: { ...spec.env, ...net.env } };
      const inner = modes.bwrap
        ? await this.sandboxed(modes.bwrap, spec, imageMounts, net.shareHost, !!net.pasta)
        : unsandboxedCommand(spec);
      const argv = launchArgv({ procsFiles: cgroup?.procsFiles, rlimits: this.opts.rlimits, setpriv: modes.setpriv }, inner.argv);
      const options = { pipes: net.pasta ? 5 : 3, detached: true, env: modes.bwrap ? childEnv() : inner.env, cwd: inner.cwd };
      const stop = { ...DEFAULT_STOP, ...spec.stop, sandboxed: !!modes.bwrap };
      const spawned: Promise<Spawned> = keeper
        ? keeper.spawn(argv, { ...options, key, spool: path.join(runDir!, 'spool'), exitFile: path.join(runDir!, 'exit.json'), stop, meta: base, fenceAt: this.fenceAt })
        : this.spawner.spawn(argv, options);
      const child = await spawned.catch((err: Error) => {
        throw errors.driverUnavailable(`cannot start ${spec.command[0] ?? 'workload'}: ${err.message}`);
      });
      // Its pasta is the keeper's child too, under a name a later server can find.
      const pastaSpawner: Spawner = keeper ? { spawn: (a, o) => keeper.spawn(a, { ...o, key: pastaKey(key), fenceAt: this.fenceAt }) } : this.spawner;
      const pasta = net.pasta ? await this.attach(net.pasta, child, spec, pastaSpawner) : undefined;
      // The start time is recorded so adopt() can tell this process from a later one that reuses its pid.
      // Read off the event loop: the read waits while the child is still exec'ing (ms under load).
      const startTime = (child as Partial<KeptSpawned>).startTime ?? (await readProcStat(child.pid))?.startTime ?? 0;
      // Whether it has a pasta to take back after a restart (one round trip to the keeper fewer when not).
      const handle: Handle = { ...base, pid: child.pid, pgid: child.pid, startTime, ...(keeper && { pasta: !!pasta }) };
      return this.track(key, new ProcessWorkload({ child, handle, sandboxed: !!modes.bwrap, cgroup, sink, pasta, ...this.keptParts(key, runDir) }));
    } catch (err) {
      await cgroup?.remove();
      if (runDir) rmSync(runDir, { recursive: true, force: true });
      throw err;
    }
  }

  private track(key: string, workload: ProcessWorkload): ProcessWorkload {
    this.live.set(key, workload);
    return workload;
  }

  /** How a workload leaves this driver: forgotten; a keeper's also let go (detach) or cleaned up. */
  private keptParts(key: string, runDir: string | undefined) {
    const keeper = this.keeper;
    let detached = false;
    return {
      onGone: () => {
        this.live.delete(key);
        if (runDir && !detached) rmSync(runDir, { recursive: true, force: true });
      },
      ...(keeper && {
        release: () => {
          detached = true;
          keeper.release(key);
          keeper.release(pastaKey(key));
        },
      }),
    };
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
  private async attach(pasta: string, child: Spawned, spec: WorkloadSpec, spawner: Spawner): Promise<Pasta> {
    try {
      const pid = await sandboxPid(child.stdio[3]!);
      const fwd = await attachPasta({ pasta, pid, ports: spec.ports, outbound: spec.network ? this.policy.outbound : 'none', spawner });
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
   * A keeper's workload (the handle names its key) is taken back from the keeper: its pipes,
   * the output spooled meanwhile (replayed into `sink` first), its pasta and cgroup; or, if
   * it ended meanwhile, its recorded exit is reported. Any other process-driver workload died
   * with its server: what the handle recorded is killed if it somehow still runs
   * (unsandboxed grandchildren that left the main process), then undefined says "start it again".
   */
  async adopt(handle: Handle, sink: WorkloadSink): Promise<Workload | undefined> {
    await this.cleanStale();
    if (handle.driver === DRIVER && typeof handle.key === 'string' && typeof handle.keeper === 'string') return this.adoptKept(handle, handle.key, sink);
    if (handle.driver === DRIVER) await this.killLeftovers(handle);
    return undefined;
  }

  /** What a handle recorded is killed if it still runs, unless its pid now belongs to another process. */
  private killLeftovers(handle: Handle): Promise<void> {
    const pgid = Number(handle.pgid ?? handle.pid);
    if (!(pgid > 1)) return Promise.resolve();
    return this.killGroupIfOurs(pgid, Number(handle.startTime));
  }

  private async killGroupIfOurs(pgid: number, startTime: number): Promise<void> {
    // The kernel never hands out a pid that is still some group's id. So if process `pgid`
    // is gone, a group with that id can only be our leftover; if it is alive, the group is
    // ours only when it is the very process we started (same start time) — otherwise the
    // id was reused by a stranger after all of ours had died.
    const leader = await readProcStat(pgid);
    if (!leader || leader.startTime === startTime) killQuietly(-pgid, 'SIGKILL');
  }

  private async adoptKept(handle: Handle, key: string, sink: WorkloadSink): Promise<Workload | undefined> {
    // Another host's keeper cannot be reached (its socket path may exist here too, another's).
    if (handle.host !== hostIdentity()) return undefined;
    const keeper = this.keeperAt(handle.keeper as string);
    const runDir = path.join(keeper.dir, 'run', key);
    // Only the keeper that started it can hold it: a later keeper (after the first died) has
    // other children, and its pid may be the old one's reused.
    const keeperAlive = await isSameProcess(Number(handle.keeperPid), Number(handle.keeperStart));
    let taken = keeperAlive ? await keeper.take(key, this.fenceAt) : undefined;
    if (taken && (taken.child.pid !== Number(handle.pid) || taken.child.startTime !== Number(handle.startTime))) {
      keeper.release(key);
      taken = undefined;
    }
    for (const e of takeSpool(taken?.spool ?? path.join(runDir, 'spool'))) sink.output(e.stream, e.data);
    const owner = typeof handle.cgroupOwner === 'string' ? handle.cgroupOwner : undefined;
    const cgroup = typeof handle.cgroup === 'string' && owner ? await openCgroup(handle.cgroup, owner) : undefined;
    // (Handles written before `pasta` was recorded do not say: asked for then.)
    const pastaTaken = keeperAlive && handle.pasta !== false ? await keeper.take(pastaKey(key), this.fenceAt).catch(() => undefined) : undefined;
    if (!taken) {
      pastaTaken?.child.kill('SIGKILL');
      // Its keeper died (it ran unsandboxed: grandchildren may have left the process tree).
      if (!keeperAlive) await this.killLeftovers(handle);
      return this.ended(handle, key, runDir, cgroup, sink);
    }
    const pasta = pastaTaken ? pastaOf(pastaTaken.child) : undefined;
    return this.track(key, new ProcessWorkload({ child: taken.child, handle, sandboxed: !!handle.sandboxed, cgroup, sink, pasta, ...this.keptParts(key, runDir) }));
  }

  /**
   * A keeper's workload that ended while no server held it: its recorded exit (exit.json)
   * is reported as if it had just happened, so the restart policy applies. Nothing recorded,
   * or the keeper itself stopped it: undefined (started again, as after a server stop).
   */
  private async ended(handle: Handle, key: string, runDir: string, cgroup: Cgroup | undefined, sink: WorkloadSink): Promise<Workload | undefined> {
    let record: ExitRecord | undefined;
    try {
      record = JSON.parse(readFileSync(path.join(runDir, 'exit.json'), 'utf8')) as ExitRecord;
    } catch {
      record = undefined;
    }
    const oomKilled = cgroup ? await cgroup.oomKilled() : false;
    await cgroup?.remove();
    rmSync(runDir, { recursive: true, force: true });
    if (!record || record.key !== key || record.pid !== Number(handle.pid) || record.byKeeper) return undefined;
    const status = exitStatus(record.code, record.signal, !!handle.sandboxed, oomKilled);
    setImmediate(() => sink.exit(status));
    return endedWorkload(handle);
  }

  /**
   * Several managers: our kept workloads (and those we adopted from another keeper of this
   * host) may run until `until` without another word from us; each keeper stops them past it.
   */
  fence(until: number): void {
    // Renewals come every third of a lease; tell the keepers only when it moved.
    if (this.fenceAt !== undefined && Math.abs(until - this.fenceAt) < FENCE_RESEND_MS) return;
    this.fenceAt = until;
    this.keeper?.fence(until);
    for (const k of this.otherKeepers.values()) k.fence(until);
  }

  /** A kept workload on another host (its keeper is out of reach): it may run there until its fence. */
  elsewhere(handle: Handle): boolean {
    return handle.driver === DRIVER && typeof handle.keeper === 'string' && handle.host !== hostIdentity();
  }

  async list(): Promise<Handle[]> {
    await this.cleanStale();
    const handles = [...this.live.values()].filter((w) => w.alive).map((w) => w.handle);
    // The keeper's children no server adopted (their instance is gone, or a stale generation).
    if (this.keeper && existsSync(this.keeper.socketPath)) {
      const kept = await this.keeper.list().catch(() => []);
      for (const c of kept) {
        const meta = c.meta as Handle | undefined;
        if (meta?.driver === DRIVER && !this.live.has(c.key) && !c.held) handles.push({ ...meta, pid: c.pid, pgid: c.pid, startTime: c.startTime });
      }
    }
    return handles;
  }

  /** Cgroups of corral servers that died (SIGKILL) are emptied and removed, once. */
  private cleanStale(): Promise<unknown> {
    this.staleCleaned ??= this.opts.cgroups === false ? Promise.resolve() : cleanupStaleCgroups().catch(() => 0);
    return this.staleCleaned;
  }

  async close(): Promise<void> {
    await Promise.all([...this.live.values()].map((w) => w.stop('SIGKILL', 0).then(() => w.finished)));
    await releaseServerCgroups();
    this.keeper?.close();
    for (const k of this.otherKeepers.values()) k.close();
  }

  /**
   * The keeper listening on `socketPath`: ours, or one of this host a handle names — a dead
   * manager's on the same host (a takeover adopts from it rather than start a second copy),
   * or ours from before drivers.process.keeper was turned off. Never started here: adopt
   * only takes from a keeper whose pid and start time it checked first.
   */
  private keeperAt(socketPath: string): KeeperClient {
    if (this.keeper?.socketPath === socketPath) return this.keeper;
    let k = this.otherKeepers.get(socketPath);
    if (!k) this.otherKeepers.set(socketPath, (k = new KeeperClient(path.dirname(socketPath))));
    return k;
  }
}

let hostId: string | undefined;
/** This machine since its last boot: a keeper's socket is reachable only from the same one. */
function hostIdentity(): string {
  if (hostId === undefined) {
    let boot = '';
    try {
      boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      /* not Linux: the hostname alone */
    }
    hostId = `${hostname()}/${boot}`;
  }
  return hostId;
}

/** The keeper's name for a workload's pasta. */
function pastaKey(key: string): string {
  return `${key}.pasta`;
}

/** A workload that already ended (its exit is being reported): nothing left to do with it. */
function endedWorkload(handle: Handle): Workload {
  return {
    handle,
    write: () => undefined,
    stop: async () => undefined,
    signal: () => undefined,
    stats: async () => ({ pids: 0 }),
  };
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
