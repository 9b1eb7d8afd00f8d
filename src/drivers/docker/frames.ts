/**
 * Docker's attach and logs streams. Without a TTY the engine multiplexes stdout and stderr on
 * one connection: each frame is an 8-byte header (stream type, 3 zero bytes, big-endian
 * payload length) and the payload. A frame may be split across chunks, and a chunk may hold
 * several frames. With a TTY the stream is the raw terminal output (all of it "stdout").
 */
import type { OutputStream } from '../driver.js';

const HEADER = 8;
const STREAMS: Record<number, OutputStream> = { 1: 'stdout', 2: 'stderr' };

export type FrameSink = (stream: OutputStream, chunk: Buffer) => void;

export class FrameDecoder {
  private pending: Buffer = Buffer.alloc(0);

  constructor(
    private readonly tty: boolean,
    private readonly sink: FrameSink,
  ) {}

  push(chunk: Buffer): void {
    if (this.tty) {
      if (chunk.length) this.sink('stdout', chunk);
      return;
    }
    let buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    while (buf.length >= HEADER) {
      const size = buf.readUInt32BE(4);
      if (buf.length < HEADER + size) break;
      // Type 0 (stdin echo) and unknown types are dropped; 3 (systemerr) counts as stderr.
      const stream = STREAMS[buf[0]!] ?? (buf[0] === 3 ? 'stderr' : undefined);
      if (stream && size) this.sink(stream, buf.subarray(HEADER, HEADER + size));
      buf = buf.subarray(HEADER + size);
    }
    this.pending = buf.length ? Buffer.from(buf) : Buffer.alloc(0);
  }
}
