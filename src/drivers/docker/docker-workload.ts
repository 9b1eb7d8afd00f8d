/** One instance's container while this server watches it: output, stdin, exit, stop, stats. */
import { setTimeout as sleep } from 'node:timers/promises';
import type Docker from 'dockerode';
import type { ExitStatus, Handle, Workload, WorkloadSink, WorkloadStats } from '../driver.js';
import { checkSignal, killContainer, removeContainer, waitForExit, type Attached } from './container-io.js';

/** After SIGKILL, how long until we stop waiting for the exit report. */
const KILL_SETTLE_MS = 5000;

export class DockerWorkload implements Workload {
  readonly exited: Promise<ExitStatus>;
  private done = false;
  private detached = false;
  private readonly abort = new AbortController();

  constructor(
    readonly handle: Handle,
    private readonly container: Docker.Container,
    private readonly io: Attached,
    sink: WorkloadSink,
    onGone: () => void,
  ) {
    this.exited = this.watch(sink).finally(onGone);
  }

  private async watch(sink: WorkloadSink): Promise<ExitStatus> {
    const status = await waitForExit(this.container, this.io, this.abort.signal).catch(() => ({ code: null, signal: null, oomKilled: false }));
    this.done = true;
    if (this.detached) return status;
    // Each generation is a fresh container: the exited one is of no further use.
    await removeContainer(this.container).catch(() => undefined);
    sink.exit(status);
    return status;
  }

  get alive(): boolean {
    return !this.done;
  }

  write(data: Buffer | string): void {
    if (!this.done && this.io.stream.writable) this.io.stream.write(data);
  }

  signal(signal: string): void {
    void killContainer(this.container, checkSignal(signal)).catch(() => undefined);
  }

  async stop(signal: string, graceMs: number): Promise<void> {
    if (this.done) return;
    await killContainer(this.container, checkSignal(signal));
    const inTime = await Promise.race([this.exited.then(() => true), sleep(graceMs).then(() => false)]);
    if (!inTime) {
      await killContainer(this.container, 'SIGKILL');
      await Promise.race([this.exited, sleep(KILL_SETTLE_MS)]);
    }
  }

  async stats(): Promise<WorkloadStats> {
    if (this.done) return { pids: 0 };
    const s = (await this.container.stats({ stream: false, 'one-shot': true } as { stream: false })) as unknown as {
      memory_stats?: { usage?: number };
      cpu_stats?: { cpu_usage?: { total_usage?: number } };
      pids_stats?: { current?: number };
    };
    return {
      memoryBytes: s.memory_stats?.usage,
      cpuSeconds: s.cpu_stats?.cpu_usage?.total_usage === undefined ? undefined : s.cpu_stats.cpu_usage.total_usage / 1e9,
      pids: s.pids_stats?.current,
    };
  }

  /** Stops watching, leaving the container running (a later server re-adopts it). */
  detach(): void {
    this.detached = true;
    this.abort.abort();
    this.io.stream.destroy();
  }
}
