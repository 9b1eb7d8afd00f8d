/**
 * Writes a stream of chunks to a new file, stopping with `source_too_large` as soon as it
 * passes the cap: the one way an archive reaches the disk, downloaded or uploaded.
 */
import { open, rm } from 'node:fs/promises';
import { errors, type CorralError } from '../errors.js';
import { abortable } from './abortable.js';

export const archiveTooLarge = (maxBytes: number): CorralError =>
  errors.sourceTooLarge(`the source archive is larger than ${maxBytes} bytes`);

/**
 * Creates `file` (it must not exist) and returns the bytes written; on failure — or once
 * `signal` aborts, with its reason — removes it.
 */
export async function writeCappedFile(
  file: string,
  chunks: AsyncIterable<Buffer> | Buffer,
  maxBytes: number,
  signal?: AbortSignal,
): Promise<number> {
  const handle = await open(file, 'wx', 0o600);
  let bytes = 0;
  try {
    for await (const chunk of abortable(Buffer.isBuffer(chunks) ? toIterable(chunks) : chunks, signal)) {
      bytes += chunk.length;
      if (bytes > maxBytes) throw archiveTooLarge(maxBytes);
      await handle.write(chunk);
    }
  } catch (e) {
    await handle.close();
    await rm(file, { force: true });
    throw e;
  }
  await handle.close();
  return bytes;
}

async function* toIterable(buffer: Buffer): AsyncIterable<Buffer> {
  yield buffer;
}
