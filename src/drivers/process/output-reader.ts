/**
 * Reads a workload's stdout or stderr (a pipe, a socket pair or the keeper's FIFO) and lets
 * a steady stream of small writes gather before reading on.
 *
 * A program that writes fast in small pieces (`yes | head` writes 4 KiB at a time) wakes the
 * server for every piece while the server keeps up: each read then brings a few KiB, and
 * everything done per read — the line split, the WebSocket frame, the client's wake-up — is
 * paid per 4 KiB, with the writer, the server and the client switching in lockstep on two
 * cores (docs/benchmarks.md measured a fourth of the throughput and twice the CPU). So when
 * small chunks come back to back, reading pauses for a millisecond: the writer fills the
 * pipe meanwhile and the next read takes up to 64 KiB at once. Output that comes now and
 * then is read at once, as before; a firehose waits at most a millisecond per pause.
 */
import type { Readable } from 'node:stream';

/** A chunk below this, within GAP_MS of the one before, means small pieces back to back. */
const SMALL_BYTES = 16 * 1024;
const GAP_MS = 2;
const PAUSE_MS = 1;

/** Calls `onChunk` with what `stream` brings; returns a function that stops reading (listeners and timer). */
export function readOutput(stream: Readable, onChunk: (chunk: Buffer) => void): () => void {
  let last = -Infinity;
  let resumedAt = -Infinity;
  let timer: NodeJS.Timeout | undefined;
  const onData = (chunk: Buffer) => {
    onChunk(chunk);
    const now = performance.now();
    // What the stream held while paused comes out right at the resume: not news of a lockstep.
    const steady = chunk.length < SMALL_BYTES && now - last < GAP_MS && now - resumedAt > PAUSE_MS;
    last = now;
    if (steady && !timer) {
      stream.pause();
      timer = setTimeout(() => {
        timer = undefined;
        resumedAt = performance.now();
        stream.resume();
      }, PAUSE_MS);
    }
  };
  stream.on('data', onData);
  return () => {
    clearTimeout(timer);
    timer = undefined;
    stream.off('data', onData);
  };
}
