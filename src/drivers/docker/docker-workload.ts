/** One instance's container while this server watches it: output, stdin, exit, stop, stats. */
import type Docker from 'dockerode';
import type { ExitStatus, Handle, Workload, WorkloadSink, WorkloadStats } from '../driver.js';
import { checkSignal, containerStats, killContainer, removeContainer, stopContainer, waitForExit, type Attached } from './container-io.js';

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
    if (!this.done) await stopContainer(this.container, signal, graceMs, this.exited);
  }

  async stats(): Promise<WorkloadStats> {
    return this.done ? { pids: 0 } : containerStats(this.container);
  }

  /** Stops watching, leaving the container running (a later server re-adopts it). */
  detach(): void {
    this.detached = true;
    this.abort.abort();
    this.io.stream.destroy();
  }
}
