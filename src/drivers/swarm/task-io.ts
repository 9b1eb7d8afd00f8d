/**
 * A swarm task's output and stdin. Output comes from the service's log, which the swarm
 * gathers from whichever node runs the task (multiplexed like an attach stream, see
 * ../docker/frames.ts). That stream does not end when the task does, so at the end it is
 * closed and the log read once more in full: whatever the follow stream had not delivered
 * yet (each stream's bytes past those already seen) goes out then. stdin only reaches a task
 * on this engine's node, by attaching to its container.
 */
import { PassThrough, type Duplex, type Readable } from 'node:stream';
import type Docker from 'dockerode';
import type { OutputStream } from '../driver.js';
import { FrameDecoder, type FrameSink } from '../docker/frames.js';

/** How long the final full read of the log may take. */
const FINAL_READ_MS = 10_000;

export class ServiceOutput {
  private readonly seen: Record<OutputStream, number> = { stdout: 0, stderr: 0 };

  private constructor(
    private readonly service: Docker.Service,
    private readonly onOutput: FrameSink,
    private readonly sinceSeconds: number,
    private readonly follow: Readable,
  ) {
    const decoder = new FrameDecoder(false, (stream, chunk) => this.deliver(stream, chunk));
    follow.on('data', (chunk: Buffer) => decoder.push(chunk));
    follow.on('error', () => undefined);
  }

  /** Follows the service's log from its first line, or from `sinceSeconds` (re-adopting). */
  static async open(service: Docker.Service, onOutput: FrameSink, sinceSeconds = 0): Promise<ServiceOutput> {
    const follow = (await service.logs(logOptions(true, sinceSeconds))) as unknown as Readable;
    return new ServiceOutput(service, onOutput, sinceSeconds, follow);
  }

  /** Once the task ended: stops following and delivers what the follow stream missed. */
  async finish(): Promise<void> {
    this.follow.destroy();
    const full = await this.service
      .logs({ ...logOptions(false, this.sinceSeconds), abortSignal: AbortSignal.timeout(FINAL_READ_MS) })
      .catch(() => undefined);
    if (!Buffer.isBuffer(full)) return; // nothing logged (or the read failed): nothing more to deliver
    const delivered = { ...this.seen };
    new FrameDecoder(false, (stream, chunk) => {
      const skip = Math.min(delivered[stream], chunk.length);
      delivered[stream] -= skip;
      if (skip < chunk.length) this.deliver(stream, chunk.subarray(skip));
    }).push(full);
  }

  /** Stops following without delivering more (the server lets go of the task). */
  close(): void {
    this.follow.destroy();
  }

  private deliver(stream: OutputStream, chunk: Buffer): void {
    this.seen[stream] += chunk.length;
    this.onOutput(stream, chunk);
  }
}

function logOptions(follow: boolean, since: number) {
  return { follow, stdout: true, stderr: true, timestamps: false, since };
}

/** The stdin of a task's container on this engine's node; a container that already ended takes no input. */
export async function attachStdin(container: Docker.Container): Promise<Duplex> {
  try {
    const stream = (await container.attach({ stream: true, stdin: true, stdout: false, stderr: false, hijack: true })) as unknown as Duplex;
    stream.on('error', () => undefined);
    return stream;
  } catch {
    return new PassThrough();
  }
}
