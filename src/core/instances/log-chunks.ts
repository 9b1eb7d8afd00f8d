/**
 * A chunk of an instance's output as bytes: where its lines are, and the NDJSON of its lines
 * for the log file, built by copying bytes rather than line by line through strings. A
 * firehose spends its time here (docs/benchmarks.md): finding lines with Buffer.indexOf,
 * one check per chunk that no byte needs JSON escaping, and one buffer per chunk for the file
 * (the line's bytes between a shared prefix and `"}`) replace a string per line, a
 * JSON.stringify per line and an encoding of the joined text.
 */

/**
 * The lines of `data` up to its last newline, as [start, end) byte offsets, pairs in one array
 * (no newline included), lines longer than `max` bytes cut into pieces of at most `max`, and
 * where the unfinished rest begins. `cutsLong` says a long line was cut (the lines are then
 * not simply the bytes separated by "\n").
 */
export function lineRanges(data: Buffer, max: number): { ranges: number[]; rest: number; cutsLong: boolean } {
  const ranges: number[] = [];
  let cutsLong = false;
  let start = 0;
  for (let nl = data.indexOf(10); nl !== -1; nl = data.indexOf(10, start)) {
    if (nl - start > max) {
      cutLong(data, start, nl, max, ranges);
      cutsLong = true;
    } else ranges.push(start, nl);
    start = nl + 1;
  }
  return { ranges, rest: start, cutsLong };
}

/**
 * Cuts [start, end) into pieces of at most `max` bytes, each ending on a character boundary
 * (a piece never splits a UTF-8 sequence, unless a "character" is longer than `max`: invalid
 * input). Pushes the pieces' ranges; returns where the last, shorter piece begins.
 */
export function cutLong(data: Buffer, start: number, end: number, max: number, ranges: number[], keepLast = true): number {
  while (end - start > max) {
    let cut = start + max;
    // Back off over continuation bytes (10xxxxxx) to the start of their character.
    for (let c = cut; c > start + max - 4 && c > start; c--) {
      if ((data[c]! & 0xc0) !== 0x80) {
        cut = c;
        break;
      }
    }
    ranges.push(start, cut);
    start = cut;
  }
  if (keepLast) ranges.push(start, end);
  return start;
}

const HIGH_BITS = 0x80808080 | 0;
const SPACES = 0x20202020;

/**
 * True when JSON would escape a byte of `data` other than "\n" (a line separator): a control
 * character, '"' or '\'. Sixteen bytes a step: four words with no byte below 0x20 pass with one
 * test (the classic "has a byte less than n"); a step that fails it (a newline, say) is checked
 * byte by byte. This scan is on every read of a firehose, so it is written for speed.
 */
export function needsJsonEscape(data: Buffer): boolean {
  if (data.indexOf(0x22) !== -1 || data.indexOf(0x5c) !== -1) return true;
  const base = data.byteOffset;
  const end = base + data.length;
  const wordsFrom = (base + 3) & ~3;
  const wordsTo = end & ~3;
  if (wordsTo <= wordsFrom) return controlIn(data, 0, data.length);
  if (controlIn(data, 0, wordsFrom - base) || controlIn(data, wordsTo - base, data.length)) return true;
  const words = new Int32Array(data.buffer, wordsFrom, (wordsTo - wordsFrom) >> 2);
  const n = words.length;
  const n4 = n & ~3;
  let i = 0;
  for (; i < n4; i += 4) {
    const a = words[i]!;
    const b = words[i + 1]!;
    const c = words[i + 2]!;
    const d = words[i + 3]!;
    // (w - 0x20202020) | 0 keeps the arithmetic in 32-bit integers (no float path).
    if (((((a - SPACES) | 0) & ~a) | (((b - SPACES) | 0) & ~b) | (((c - SPACES) | 0) & ~c) | (((d - SPACES) | 0) & ~d)) & HIGH_BITS) {
      const at = wordsFrom - base + i * 4;
      if (controlIn(data, at, at + 16)) return true;
    }
  }
  for (; i < n; i++) {
    const w = words[i]!;
    if ((((w - SPACES) | 0) & ~w & HIGH_BITS) !== 0) {
      const at = wordsFrom - base + i * 4;
      if (controlIn(data, at, at + 4)) return true;
    }
  }
  return false;
}

/** A control character other than "\n" in data[from, to). */
function controlIn(data: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = data[i]!;
    if (c < 0x20 && c !== 10) return true;
  }
  return false;
}

const CLOSE = Buffer.from('"}\n');

/**
 * One NDJSON record per range of `data`: `prefix` (`{"t":…,"s":…,"l":"`), the line's bytes,
 * `"}` and a newline, all in one buffer. Only for bytes that need no escaping
 * (!needsJsonEscape) and are valid UTF-8: then the bytes are what JSON.stringify would write.
 */
export function ndjsonOf(data: Buffer, ranges: number[], prefix: Buffer, alloc: (size: number) => Buffer = Buffer.allocUnsafe): Buffer {
  let bytes = 0;
  for (let i = 0; i < ranges.length; i += 2) bytes += ranges[i + 1]! - ranges[i]!;
  const out = alloc(bytes + (ranges.length / 2) * (prefix.length + CLOSE.length));
  let o = 0;
  for (let i = 0; i < ranges.length; i += 2) {
    o += prefix.copy(out, o);
    o += data.copy(out, o, ranges[i]!, ranges[i + 1]!);
    o += CLOSE.copy(out, o);
  }
  return out;
}

/** The ranges' bytes joined by "\n" (no newline after the last): a text frame of those lines. */
export function joinRanges(data: Buffer, ranges: number[]): Buffer {
  let bytes = 0;
  for (let i = 0; i < ranges.length; i += 2) bytes += ranges[i + 1]! - ranges[i]! + 1;
  const out = Buffer.allocUnsafe(Math.max(0, bytes - 1));
  let o = 0;
  for (let i = 0; i < ranges.length; i += 2) {
    if (i) out[o++] = 10;
    o += data.copy(out, o, ranges[i]!, ranges[i + 1]!);
  }
  return out;
}

/** Records at least this big are built in a block (below it, a buffer of their own: Node pools small ones). */
const IN_BLOCK_BYTES = 8 * 1024;
const BLOCK_BYTES = 256 * 1024;

/**
 * Where one log's NDJSON records are built. A firehose's reads (8 KiB of records or more) go
 * into blocks of 256 KiB, one of which is used again once written, instead of a fresh buffer
 * per read: fresh memory for every 64 KiB read cost cache misses and garbage collection more
 * than the copying itself (docs/benchmarks.md). A write takes the blocks filled so far with
 * the records (seal), and gives them back when they are on disk (written). A quiet log's small
 * records never take a block, and a closed log keeps none.
 */
export class RecordBlocks {
  private filling: Buffer | undefined;
  private used = 0;
  /** Filled blocks whose records wait for the next write. */
  private sealed: Buffer[] = [];
  private spare: Buffer | undefined;

  /** `size` bytes to build records in, valid until the write that takes them is done. */
  readonly room = (size: number): Buffer => {
    if (size < IN_BLOCK_BYTES || size > BLOCK_BYTES) return Buffer.allocUnsafe(size);
    if (!this.filling || this.filling.length - this.used < size) {
      if (this.filling) this.sealed.push(this.filling);
      this.filling = this.spare ?? Buffer.allocUnsafe(BLOCK_BYTES);
      this.spare = undefined;
      this.used = 0;
    }
    const out = this.filling.subarray(this.used, this.used + size);
    this.used += size;
    return out;
  };

  /** A write takes every record built so far: the blocks holding them are its own until written(). */
  seal(): Buffer[] {
    if (this.filling) this.sealed.push(this.filling);
    this.filling = undefined;
    const blocks = this.sealed;
    this.sealed = [];
    return blocks;
  }

  /** The write did not happen: its records wait again, and their blocks with them. */
  unseal(blocks: Buffer[]): void {
    this.sealed.unshift(...blocks);
  }

  /** The write is on disk: its blocks are free (one is kept for the next records). */
  written(blocks: Buffer[]): void {
    this.spare ??= blocks[0];
  }

  /** The log went quiet: no block is kept for it. */
  release(): void {
    this.spare = undefined;
  }
}
