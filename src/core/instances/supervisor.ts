/**
 * The supervisor owns desired vs observed state. The service writes the desired state to
 * the store first; then the supervisor converges: it starts, stops, restarts (with backoff)
 * and deletes workloads through the Driver, writing every observed change to the store and
 * announcing it as an event. It converges one instance at a time (a per-instance queue), on
 * request, when a workload exits, on startup (adopt() first, else start again) and on a timer.
 */
import { chmod } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Driver, ExitStatus, Workload, WorkloadSink, WorkloadSpec } from '../../drivers/driver.js';
import type { InstanceRecord, ObservedPatch } from '../../store/instances.js';
import type { Store } from '../../store/index.js';
import { isCorralError } from '../errors.js';
import { soleLeases, type InstanceLeases } from '../cluster/leases.js';
import { restartDelayMs, shouldRestart, wasStable } from './backoff.js';
import type { InstancesConfig } from './config.js';
import { createInstanceDirs, instanceDirs, removeInstanceDirs, type InstanceDirs } from './dirs.js';
import type { InstanceEvents } from './events.js';
import { InstanceLog } from './logs.js';
import { PortAllocator, portEnv, workloadPorts } from './ports.js';
import type { InstanceSpec, InstanceState } from './spec.js';
import { ACTIVE_STATES, assertTransition } from './states.js';

/** What a Procfile app runs, once its source is downloaded and unpacked. */
export interface RunnableSource {
  command: string[];
  /** The Procfile line's inline env. */
  env: Record<string, string>;
  /** Inside the sandbox: under config.sourceMount. */
  cwd: string;
}

/** Downloads (or takes the uploaded archive), unpacks and reads the Procfile. */
export type PrepareSource = (
  record: InstanceRecord,
  dirs: InstanceDirs,
  onState: (state: 'downloading' | 'unpacking') => Promise<void>,
) => Promise<RunnableSource>;

const BASE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** How long a stop waits for the driver's exit report after stop() returned. */
const EXIT_REPORT_MS = 5_000;
/** Instances converged at once when the server opens: enough to keep the driver busy, not so many that requests wait behind them. */
const OPEN_CONVERGE_WIDTH = 32;

/**
 * In-memory state of one instance while this server runs. A server holds thousands: what can
 * be derived (its directories) is derived when used, and an idle runner holds no promise.
 */
class Runner {
  workload: Workload | undefined;
  generation = 0;
  startedAt = 0;
  /** Quick consecutive exits: the exponent of the next restart delay. */
  attempt = 0;
  backoffTimer: NodeJS.Timeout | undefined;
  exits = new Map<number, { status: ExitStatus; reported: Promise<void>; resolve: () => void }>();
  /** Not started before this time: its last copy may still run out of reach until its fence (takeOver). */
  fencedUntil = 0;
  /** The end of the last queued operation; undefined once it ended (nothing queued). */
  private queue: Promise<unknown> | undefined;
  deleted = false;

  constructor(
    readonly id: string,
    private readonly dataRoot: string,
    readonly log: InstanceLog,
  ) {}

  /** Its directories (four joined paths: made when needed rather than kept per instance). */
  get dirs(): InstanceDirs {
    return instanceDirs(this.dataRoot, this.id);
  }

  /** Runs `fn` after everything queued before it: one operation at a time per instance. */
  serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = (this.queue ?? Promise.resolve()).then(fn, fn);
    const tail: Promise<unknown> = next.then(
      () => this.idle(tail),
      () => this.idle(tail),
    );
    this.queue = tail;
    return next;
  }

  private idle(tail: Promise<unknown>): void {
    if (this.queue === tail) this.queue = undefined;
  }

  exitOf(generation: number) {
    let entry = this.exits.get(generation);
    if (!entry) {
      let resolve!: () => void;
      const reported = new Promise<void>((r) => (resolve = r));
      entry = { status: { code: null, signal: null, oomKilled: false }, reported, resolve };
      this.exits.set(generation, entry);
    }
    return entry;
  }
}

export class Supervisor {
  private readonly runners = new Map<string, Runner>();
  private readonly ports = new PortAllocator();
  private timer: NodeJS.Timeout | undefined;
  private closing = false;

  constructor(
    private readonly store: Store,
    private readonly driver: Driver,
    private readonly config: InstancesConfig,
    private readonly dataRoot: string,
    private readonly events: InstanceEvents,
    private readonly log: Logger,
    private readonly prepareSource: PrepareSource,
    private readonly leases: InstanceLeases = soleLeases,
  ) {}

  /** Adopts or restarts what should run, finishes interrupted deletes, then reconciles on a timer. */
  async open(): Promise<void> {
    const records = await this.store.instances.list();
    const known = new Set(records.map((r) => r.id));
    const claimed = new Set<string>();
    // Some at a time: adopting one is a few round trips to the keeper and file reads; one after
    // another that was ~10 ms each, some 50 s for 5,000 kept workloads (bench/keeper-adopt.ts).
    await inLanes(records, OPEN_CONVERGE_WIDTH, async (r) => {
      // Another manager sharing the database supervises it (see core/cluster/leases.ts).
      if ((await this.leases.claim(r.id)) === 'refused') return;
      this.renewFence();
      claimed.add(r.id);
      await this.takeOver(this.runner(r.id), r);
    });
    const mine = records.filter((r) => claimed.has(r.id));
    await this.cleanOrphans(known);
    // What was not adopted starts again in the background, some at a time: with thousands of
    // instances that takes a while, and the server answers meanwhile (each shows its state).
    // A source may take minutes to download and unpack again: it must not hold up a lane.
    for (const r of mine) if (r.spec.source) this.convergeInBackground(r.id);
    void this.convergeAll(mine.filter((r) => !r.spec.source).map((r) => r.id));
    this.leases.start((ids) => this.forget(ids), () => this.renewFence());
    const every = this.config.reconcileSeconds * 1000;
    this.timer = setInterval(() => void this.reconcile(), every);
    this.timer.unref();
  }

  /**
   * Adopts the workload a previous server process left (this server before a restart, or a
   * manager that died), or records that it is gone so converging starts it again.
   */
  private async takeOver(runner: Runner, r: InstanceRecord): Promise<void> {
    if (r.handle && r.desiredState !== 'deleted') {
      const gen = r.generation;
      try {
        const w = await this.driver.adopt(r.handle, this.sink(runner, gen));
        if (w) {
          runner.workload = w;
          runner.generation = gen;
          runner.startedAt = r.startedAt ?? Date.now();
        }
      } catch (e) {
        this.log.warn({ err: e, instance: r.id }, 'could not adopt a workload');
      }
    }
    // Out of reach on another host, it may still run there until its keeper's fence: the
    // handle stays (a manager taking over from us meanwhile waits too) and the start waits.
    const elsewhere = !runner.workload && !!r.handle && r.desiredState !== 'deleted' && !!this.driver.elsewhere?.(r.handle);
    if (elsewhere) {
      runner.fencedUntil = Date.now() + this.leases.fenceMs;
      runner.log.note(`its last copy may still run on another host until its fence: starting it in ${Math.ceil(this.leases.fenceMs / 1000)} s`);
    }
    // What ran under the previous server and could not be adopted is gone: say so, then converge.
    if (!runner.workload && (r.handle || ACTIVE_STATES.has(r.state)) && r.state !== 'stopped') {
      await this.observe(r, { state: 'stopped', ...(!elsewhere && { handle: null }) });
    }
  }

  /** Tells the driver how long our workloads may run without another lease renewal (the keeper's fence). */
  private renewFence(): void {
    const until = this.leases.fenceUntil();
    if (until !== undefined) this.driver.fence?.(until);
  }

  /** Instances another manager took over (this one lost their leases): end our copy, write nothing. */
  private forget(ids: string[]): void {
    for (const id of ids) {
      const runner = this.runners.get(id);
      if (!runner) continue;
      void runner.serial(async () => {
        clearTimeout(runner.backoffTimer);
        runner.backoffTimer = undefined;
        const w = runner.workload;
        runner.workload = undefined;
        this.ports.release(id);
        this.log.warn({ instance: id }, 'another manager took this instance over; ending the local copy');
        await w?.stop('SIGKILL', 0).catch(() => undefined);
      });
    }
  }

  /**
   * Stops every workload with its stop signal and grace period, in parallel, and waits.
   * Workloads that outlive the server (containers) are let go instead: the next server adopts them.
   */
  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.timer);
    let detached = 0;
    await Promise.all(
      [...this.runners.values()].map((runner) =>
        runner.serial(async () => {
          clearTimeout(runner.backoffTimer);
          const r = await this.store.instances.byId(runner.id);
          if (runner.workload?.detach) {
            runner.workload.detach();
            runner.workload = undefined;
            detached++;
          } else if (r && runner.workload) await this.stopWorkload(runner, r, 'stopped');
          await runner.log.close();
        }),
      ),
    );
    // Whoever stops a server should know what it left running, and how to stop that too.
    if (detached) this.log.info({ instances: detached }, `${detached} instance${detached === 1 ? '' : 's'} keep running without this server (the process driver's keeper, or the container engine, holds them): the next server on this data dir re-adopts them; \`corral keeper status|stop\` shows or stops the kept ones`);
    await this.leases.close();
  }

  /** The instance's output, for logs and attach. */
  output(id: string): InstanceLog {
    return this.runner(id).log;
  }

  /** The live workload, if it runs now. */
  workload(id: string): Workload | undefined {
    return this.runners.get(id)?.workload;
  }

  /**
   * Makes observed follow desired for one instance. `force` also starts an instance that
   * ended on its own (exited, failed): what an explicit start or restart asks for.
   */
  converge(id: string, opts: { force?: boolean; restart?: boolean } = {}): Promise<void> {
    const runner = this.runner(id);
    return runner.serial(async () => {
      if (this.closing || runner.deleted) return;
      const r = await this.store.instances.byId(id);
      if (!r) return;
      const lease = await this.leases.claim(id);
      if (lease === 'refused') return; // another manager supervises it and converges it
      this.renewFence();
      if (lease === 'taken' && !runner.workload && (r.handle || r.state !== 'pending')) await this.takeOver(runner, r);
      if (r.desiredState === 'deleted') return this.remove(runner, r);
      if (r.desiredState === 'stopped') {
        clearTimeout(runner.backoffTimer);
        runner.backoffTimer = undefined;
        if (runner.workload) await this.stopWorkload(runner, r, 'stopped');
        else if (r.state !== 'stopped') await this.observe(r, { state: 'stopped' });
        return;
      }
      if (opts.restart && runner.workload) {
        await this.stopWorkload(runner, r, 'pending');
        r.state = 'pending';
      }
      if (runner.workload) return;
      if (opts.force) {
        clearTimeout(runner.backoffTimer);
        runner.backoffTimer = undefined;
        runner.attempt = 0;
      } else if (runner.backoffTimer || r.state === 'exited' || r.state === 'failed') {
        return;
      }
      const fenced = runner.fencedUntil - Date.now();
      if (fenced > 0) {
        // Not even a forced start: two copies would run. Converged again once the fence fell.
        runner.backoffTimer ??= setTimeout(() => {
          runner.backoffTimer = undefined;
          this.convergeInBackground(runner.id);
        }, fenced);
        return;
      }
      await this.start(runner, r);
    });
  }

  /** Converges `ids`, OPEN_CONVERGE_WIDTH at a time; failures are logged. */
  private convergeAll(ids: string[]): Promise<void> {
    return inLanes(ids, OPEN_CONVERGE_WIDTH, async (id) => {
      if (!this.closing) await this.converge(id).catch((e: unknown) => this.log.error({ err: e }, 'converging an instance failed'));
    });
  }

  /** `converge` for callers that do not wait: failures are logged, not thrown. */
  convergeInBackground(id: string): void {
    this.converge(id).catch((e: unknown) => this.log.error({ err: e, instance: id }, 'converging an instance failed'));
  }

  /** Sends a signal to a running workload; false when nothing runs. */
  signal(id: string, signal: string): boolean {
    const w = this.runners.get(id)?.workload;
    if (!w) return false;
    w.signal(signal);
    return true;
  }

  private async reconcile(): Promise<void> {
    try {
      // Only ids and states: parsing every spec each round cost more than the check itself.
      for (const r of await this.store.instances.states()) {
        const runner = this.runners.get(r.id);
        const alive = !!runner?.workload;
        const needs =
          r.desiredState === 'deleted' ||
          (r.desiredState === 'stopped' && (alive || r.state !== 'stopped')) ||
          (r.desiredState === 'running' && !alive && !runner?.backoffTimer && !['exited', 'failed'].includes(r.state));
        if (needs) this.convergeInBackground(r.id);
      }
    } catch (e) {
      this.log.error({ err: e }, 'reconcile failed');
    }
  }

  private runner(id: string): Runner {
    let runner = this.runners.get(id);
    if (!runner) {
      runner = new Runner(id, this.dataRoot, new InstanceLog(instanceDirs(this.dataRoot, id).logs, this.config.logs));
      this.runners.set(id, runner);
    }
    return runner;
  }

  private async start(runner: Runner, r: InstanceRecord): Promise<void> {
    const dirs = runner.dirs;
    await createInstanceDirs(dirs);
    await chmod(dirs.data, 0o700);
    if (r.state !== 'pending') await this.observe(r, { state: 'pending' });
    let prepared: RunnableSource | undefined;
    if (r.spec.source) {
      try {
        prepared = await this.prepareSource(r, dirs, (state) => this.observe(r, { state }));
      } catch (e) {
        // Cancelled by a delete or a server stop: not the source's fault; the next start unpacks again.
        if (isCorralError(e) && e.code === 'source_cancelled') return this.observe(r, { state: 'stopped' });
        const message = isCorralError(e) ? `${e.code}: ${e.message}` : `source failed: ${(e as Error).message}`;
        runner.log.note(message);
        await this.observe(r, { state: 'failed', lastError: message });
        return;
      }
    }
    const generation = r.generation + 1;
    let ports: InstanceRecord['ports'];
    try {
      ports = await this.ports.allocate(r.id, r.spec.ports.map((p) => p.name), r.ports);
    } catch (e) {
      await this.startFailed(runner, r, `no free port: ${(e as Error).message}`);
      return;
    }
    await this.observe(r, { state: 'starting', generation, ports, exitCode: null, exitSignal: null });
    const spec = this.workloadSpec(r, dirs, generation, ports, prepared);
    let workload: Workload;
    try {
      workload = await this.driver.start(spec, this.sink(runner, generation));
    } catch (e) {
      await this.startFailed(runner, r, `start failed: ${(e as Error).message}`);
      return;
    }
    runner.workload = workload;
    runner.generation = generation;
    runner.startedAt = Date.now();
    runner.log.note(`started (generation ${generation})`);
    await this.observe(r, { state: 'running', handle: workload.handle, startedAt: runner.startedAt, lastError: null });
  }

  private async startFailed(runner: Runner, r: InstanceRecord, message: string): Promise<void> {
    runner.log.note(message);
    if (r.spec.restart === 'never') await this.observe(r, { state: 'failed', lastError: message });
    else await this.backoff(runner, r, message);
  }

  private workloadSpec(
    r: InstanceRecord,
    dirs: InstanceDirs,
    generation: number,
    ports: InstanceRecord['ports'],
    prepared: RunnableSource | undefined,
  ): WorkloadSpec {
    const { spec } = r;
    const cfg = this.config;
    const command = prepared?.command ?? spec.command ?? ['sh', '-c', spec.shell ?? 'true'];
    return {
      instanceId: r.id,
      owner: r.ownerId,
      generation,
      command,
      env: {
        PATH: BASE_PATH,
        HOME: cfg.dataMount,
        LANG: 'C.UTF-8',
        CORRAL_INSTANCE: r.name,
        CORRAL_INSTANCE_ID: r.id,
        // Python buffers stdout when it is not a terminal: its logs would show nothing for minutes.
        PYTHONUNBUFFERED: '1',
        ...portEnv(workloadPorts(spec.ports, ports)),
        ...spec.env,
        ...prepared?.env,
      },
      cwd: prepared?.cwd ?? cfg.dataMount,
      dataDir: dirs.data,
      dataMount: cfg.dataMount,
      mounts: prepared ? [{ source: dirs.source, target: cfg.sourceMount, readOnly: false }] : [],
      ports: workloadPorts(spec.ports, ports),
      limits: { ...cfg.defaultLimits, ...spec.limits },
      network: true,
      driver: spec.driver,
      image: spec.image,
      stop: { signal: spec.stopSignal, graceMs: spec.stopGraceSeconds * 1000 },
    };
  }

  private sink(runner: Runner, generation: number): WorkloadSink {
    return {
      output: (stream, chunk) => runner.log.append(stream, chunk),
      exit: (status) => {
        const entry = runner.exitOf(generation);
        entry.status = status;
        entry.resolve();
        void runner.serial(() => this.onExit(runner, generation, status)).catch((e: unknown) =>
          this.log.error({ err: e, instance: runner.id }, 'handling an exit failed'),
        );
      },
    };
  }

  /** A workload ended on its own (a stop clears `runner.workload` first, so it is not seen here). */
  private async onExit(runner: Runner, generation: number, status: ExitStatus): Promise<void> {
    runner.exits.delete(generation);
    if (runner.generation !== generation || !runner.workload) return;
    runner.workload = undefined;
    runner.log.endOfOutput();
    const r = await this.store.instances.byId(runner.id);
    if (!r) return;
    const message = describeExit(status);
    runner.log.note(message);
    const failed = status.code !== 0 || status.signal !== null || status.oomKilled;
    const patch: ObservedPatch = {
      exitCode: status.code,
      exitSignal: status.signal,
      lastError: failed ? message : null,
      handle: null,
    };
    if (this.closing || r.desiredState !== 'running') {
      await this.observe(r, { ...patch, state: 'stopped' });
      if (r.desiredState === 'deleted') await this.remove(runner, r);
      return;
    }
    if (wasStable(this.config.restart, Date.now() - runner.startedAt)) runner.attempt = 0;
    if (shouldRestart(r.spec.restart, failed)) await this.backoff(runner, r, patch.lastError ?? null, patch);
    else await this.observe(r, { ...patch, state: failed ? 'failed' : 'exited' });
  }

  /** Waits (×1.5 each quick exit, capped) before starting again: a crash loop never spins a core. */
  private async backoff(runner: Runner, r: InstanceRecord, lastError: string | null, patch: ObservedPatch = {}): Promise<void> {
    const delay = restartDelayMs(this.config.restart, runner.attempt++);
    await this.observe(r, { ...patch, state: 'backoff', lastError, restartCount: r.restartCount + 1 });
    runner.log.note(`restarting in ${(delay / 1000).toFixed(1)} s`);
    runner.backoffTimer = setTimeout(() => {
      runner.backoffTimer = undefined;
      this.convergeInBackground(runner.id);
    }, delay);
  }

  /** Stops the live workload with the spec's signal and grace and records `state`. */
  private async stopWorkload(runner: Runner, r: InstanceRecord, state: InstanceState): Promise<void> {
    const w = runner.workload!;
    const generation = runner.generation;
    runner.workload = undefined;
    const exit = runner.exitOf(generation);
    try {
      await w.stop(r.spec.stopSignal, r.spec.stopGraceSeconds * 1000);
    } catch (e) {
      this.log.error({ err: e, instance: r.id }, 'stopping a workload failed');
    }
    await Promise.race([exit.reported, new Promise((resolve) => setTimeout(resolve, EXIT_REPORT_MS).unref())]);
    runner.log.endOfOutput();
    runner.log.note(`stopped (${describeExit(exit.status)})`);
    this.ports.release(r.id);
    await this.observe(r, { state, exitCode: exit.status.code, exitSignal: exit.status.signal, handle: null });
  }

  private async remove(runner: Runner, r: InstanceRecord): Promise<void> {
    clearTimeout(runner.backoffTimer);
    if (runner.workload) await this.stopWorkload(runner, r, 'stopped');
    runner.deleted = true;
    await runner.log.close();
    this.ports.release(r.id);
    await removeInstanceDirs(runner.dirs);
    await this.store.instances.delete(r.id);
    this.runners.delete(r.id);
    this.events.emit({ ...eventOf(r), type: 'deleted' });
  }

  /** Writes an observed change (checked by the state machine), then announces it. */
  private async observe(r: InstanceRecord, patch: ObservedPatch): Promise<void> {
    if (patch.state) assertTransition(r.state, patch.state);
    await this.store.instances.updateObserved(r.id, patch);
    Object.assign(r, patch);
    if (patch.state) this.events.emit({ ...eventOf(r), type: 'state' });
  }

  /** Refuses a spec its driver cannot run (driver not enabled, image not allowed or missing). */
  async admit(spec: InstanceSpec): Promise<void> {
    await this.driver.admit?.({ driver: spec.driver, image: spec.image, ports: spec.ports.length });
  }

  /** Ends workloads the driver still runs for instances that no longer exist, and stale duplicates. */
  private async cleanOrphans(known: Set<string>): Promise<void> {
    let handles;
    try {
      handles = await this.driver.list();
    } catch {
      return;
    }
    for (const h of handles) {
      const id = typeof h.instanceId === 'string' ? h.instanceId : undefined;
      const adopted = id ? this.runners.get(id)?.workload?.handle : undefined;
      if (id && known.has(id) && (!adopted || (adopted.driver === h.driver && adopted.generation === h.generation))) continue;
      const w = await this.driver.adopt(h, { output: () => {}, exit: () => {} }).catch(() => undefined);
      await w?.stop('SIGKILL', 0).catch(() => undefined);
    }
  }
}

/** Calls `fn` on every item, `width` calls at a time. */
async function inLanes<T>(items: readonly T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, lane));
}

function eventOf(r: InstanceRecord) {
  return {
    id: r.id,
    ownerId: r.ownerId,
    name: r.name,
    state: r.state,
    desiredState: r.desiredState,
    restartCount: r.restartCount,
    exitCode: r.exitCode,
    exitSignal: r.exitSignal,
    lastError: r.lastError,
    at: new Date().toISOString(),
  };
}

/** "killed: out of memory", "killed by SIGKILL", "exited with code 3". */
export function describeExit(s: ExitStatus): string {
  if (s.oomKilled) return 'killed: out of memory';
  if (s.signal) return `killed by ${s.signal}`;
  return `exited with code ${s.code ?? '?'}`;
}

export type { InstanceSpec };
