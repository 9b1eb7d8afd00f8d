/**
 * Talking to a swarm task's container on this node. Swarm starts the container itself, so
 * output cannot be attached to before it starts: it is read from the container's log from
 * the beginning (or from now, when re-adopting), and stdin is a separate attach.
 */
import { PassThrough, type Duplex, type Readable } from 'node:stream';
import type Docker from 'dockerode';
import type { OutputStream } from '../driver.js';
import type { Attached } from '../docker/container-io.js';
import { FrameDecoder } from '../docker/frames.js';

export async function followTask(
  container: Docker.Container,
  onOutput: (stream: OutputStream, chunk: Buffer) => void,
  sinceSeconds = 0,
): Promise<Attached & { logs: Readable }> {
  const logs = (await container.logs({ follow: true, stdout: true, stderr: true, since: sinceSeconds })) as unknown as Readable;
  const decoder = new FrameDecoder(false, onOutput);
  logs.on('data', (chunk: Buffer) => decoder.push(chunk));
  const ended = new Promise<void>((resolve) => {
    logs.once('end', resolve);
    logs.once('close', resolve);
    logs.once('error', () => resolve());
  });
  let stream: Duplex;
  try {
    stream = (await container.attach({ stream: true, stdin: true, stdout: false, stderr: false, hijack: true })) as unknown as Duplex;
    stream.on('error', () => undefined);
  } catch {
    stream = new PassThrough(); // it already ended: nothing to write to
  }
  return { stream, ended, logs };
}
