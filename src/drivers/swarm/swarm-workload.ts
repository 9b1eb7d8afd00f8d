/**
 * One instance's swarm task while this server watches it. Its state comes from the swarm
 * (the service's tasks, polled), its output from the service's log: both work wherever the
 * swarm placed the task. What needs the task's container — signals, a stop with a grace
 * period, stats, the OOM flag, stdin (pinned tasks only) — goes through this engine when the
 * task runs on its node; a task on another node is stopped by scaling its service to zero
 * (swarm's stop: SIGTERM, SIGKILL after its grace period) and cannot be signalled.
 */
import type { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type Docker from 'dockerode';
import { errors } from '../../core/errors.js';
import type { ExitStatus, Handle, Workload, WorkloadSink, WorkloadStats } from '../driver.js';
import { checkSignal, containerStats, killContainer, stopContainer } from '../docker/container-io.js';
import type { Engine } from '../docker/engine.js';
import type { ServiceOutput } from './task-io.js';
import { serviceTasks, taskEnded, taskExit, type SwarmTask } from './tasks.js';

/** How often the swarm is asked whether the task still runs. */
const POLL_MS = 250;
/** Consecutive failed polls (the engine away) after which the task counts as lost. */
const MAX_POLL_FAILURES = 40;
/** How long a remote stop may take: swarm's default stop grace period (10 s) and some. */
const REMOTE_STOP_MS = 20_000;

export interface TaskIO {
  output: ServiceOutput;
  /** The container's stdin: only for pinned tasks (always on this node). */
  stdin?: Duplex;
}

export class SwarmWorkload implements Workload {
  readonly exited: Promise<ExitStatus>;
  /** The task's container, when it runs on this engine's node. */
  private readonly container?: Docker.Container;
  private done = false;
  private detached = false;
  private readonly abort = new AbortController();

  constructor(
    readonly handle: Handle,
    private readonly engine: Engine,
    private readonly service: Docker.Service,
    private readonly task: SwarmTask,
    local: boolean,
    private readonly io: TaskIO,
    sink: WorkloadSink,
    /** Called once the task ended (before the exit report) or the server let go of it: `ended` says which. */
    onGone: (ended: boolean) => Promise<void>,
  ) {
    const id = task.Status?.ContainerStatus?.ContainerID;
    if (local && id) this.container = engine.getContainer(id);
    this.exited = this.watch(sink, onGone);
  }

  private async watch(sink: WorkloadSink, onGone: (ended: boolean) => Promise<void>): Promise<ExitStatus> {
    const last = await this.untilEnded();
    this.done = true;
    this.io.stdin?.destroy();
    if (this.detached) {
      await onGone(false);
      return taskExit(last, false);
    }
    // The engine's OOM flag also covers a child the limit killed while the main process lived on.
    const oomKilled = (await this.container?.inspect().then((i) => !!i.State.OOMKilled, () => false)) ?? false;
    await this.io.output.finish();
    await onGone(true); // the service goes before the report, so the next generation can publish its ports
    const status = taskExit(last, oomKilled);
    sink.exit(status);
    return status;
  }

  /** Polls the swarm until the task ended (or vanished, or the server let go): its last known state. */
  private async untilEnded(): Promise<SwarmTask | undefined> {
    let failures = 0;
    while (!this.detached) {
      try {
        const t = (await serviceTasks(this.engine, this.service.id)).find((x) => x.ID === this.task.ID);
        if (!t || taskEnded(t)) return t;
        failures = 0;
      } catch {
        if (++failures >= MAX_POLL_FAILURES) return undefined;
      }
      await sleep(POLL_MS, undefined, { signal: this.abort.signal }).catch(() => undefined);
    }
    return undefined;
  }

  /** stdin of a pinned task; a no-op for others (the swarm offers no stdin to a task elsewhere). */
  write(data: Buffer | string): void {
    if (!this.done && this.io.stdin?.writable) this.io.stdin.write(data);
  }

  signal(signal: string): void {
    checkSignal(signal);
    if (!this.container) throw errors.invalidState('signals cannot reach a swarm task on another node (only stop can)');
    void killContainer(this.container, signal).catch(() => undefined);
  }

  async stop(signal: string, graceMs: number): Promise<void> {
    if (this.done) return;
    if (this.container) return stopContainer(this.container, signal, graceMs, this.exited);
    checkSignal(signal);
    await this.scaleToZero();
    await Promise.race([this.exited, sleep(REMOTE_STOP_MS)]);
  }

  async stats(): Promise<WorkloadStats> {
    if (this.done) return { pids: 0 };
    return this.container ? containerStats(this.container) : {};
  }

  /** Stops watching, leaving the service running (a later server re-adopts it). */
  detach(): void {
    this.detached = true;
    this.abort.abort();
    this.io.output.close();
  }

  private async scaleToZero(): Promise<void> {
    const info = (await this.service.inspect()) as { Version: { Index: number }; Spec: Record<string, unknown> };
    const spec = { ...info.Spec, Mode: { Replicated: { Replicas: 0 } } };
    await this.service.update({ _query: { version: info.Version.Index }, _body: spec });
  }
}
