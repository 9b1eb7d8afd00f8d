/**
 * An instance's output: stdout and stderr split into timestamped lines, each marked with
 * its stream (stdout, stderr, or `corral` for corral's own notes), kept in a small in-memory
 * ring (for `logs -f` and quick tails) and appended as NDJSON to rotating files in the
 * instance dir (`logs/output.log`, `.1` … `.keepFiles`). An app's log is one too, fed
 * with its copies' lines (each marked with the copy: `source`).
 *
 * Output is handled as bytes a chunk at a time (log-chunks.ts): the lines one read brought
 * form a batch with one timestamp, one NDJSON buffer for the file and, for text clients,
 * their bytes joined by "\n" as they came (no copy). Line subscribers get each line; batch
 * subscribers (attach's text frames, HTTP follow) get the batch. The tail keeps the batches
 * too, and a line becomes a string only when someone asks for it (a line subscriber, a read
 * of the tail): a firehose with only byte-taking clients makes no string per line. A chunk
 * that is not valid UTF-8 is decoded with replacement characters, line by line.
 *
 * Memory is bounded everywhere: the ring by lines and bytes, a partial line by
 * maxLineBytes (longer lines are split, on a character boundary), output waiting for the
 * disk by pendingWriteBytes (past it, lines are dropped and a marker line says how many).
 * Subscribers are called synchronously and must not block; `forwardBounded` and
 * `forwardBoundedBatches` are how a network client subscribes without ever stalling the
 * child or the other clients.
 */
import { isAscii, isUtf8 } from 'node:buffer';
import { closeSync, fstatSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writev } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { OutputStream } from '../../drivers/driver.js';
import type { InstancesConfig } from './config.js';
import { cutLong, joinRanges, lineRanges, ndjsonOf, needsJsonEscape, RecordBlocks } from './log-chunks.js';

export type LogStream = OutputStream | 'corral';

export interface LogEntry {
  /** ms since the epoch when corral read the line. */
  t: number;
  stream: LogStream;
  line: string;
  /** In an app's log: the copy (instance name) the line came from. */
  source?: string;
}

/** Keeps the entries a search wants; undefined = all. */
export type LogFilter = ((e: LogEntry) => boolean) | undefined;

export type LogsConfig = InstancesConfig['logs'];
export type LogSubscriber = (entry: LogEntry) => void;

/** Lines of one stream that came together (one read of output, or a single line), in order. */
export interface LineBatch {
  readonly t: number;
  readonly stream: LogStream;
  /** How many lines. */
  readonly count: number;
  /** In an app's log: the copy its line came from. */
  readonly source?: string;
  /** The lines as entries: made when first asked for (a client that takes bytes never does). */
  readonly entries: LogEntry[];
  /** The lines as UTF-8 separated by "\n", none after the last: a text frame's payload. */
  readonly bytes: Buffer;
}
export type BatchSubscriber = (batch: LineBatch) => void;

const FILE = 'output.log';
/** How often a forwarder that dropped lines checks whether its client caught up, and for how long. */
const MARKER_POLL_MS = 200;
const MARKER_GIVE_UP_MS = 60_000;
/**
 * How long the log file stays open after the last write: output that keeps coming is not
 * an open and a close per chunk, and a quiet instance still holds no descriptor.
 */
const FILE_IDLE_CLOSE_MS = 500;
/**
 * Output waits up to WRITE_DELAY_MS for more before it is written, unless WRITE_BATCH_BYTES
 * wait already: a firehose is then one write per 256 KiB instead of one per read, each a
 * hand-off to a thread of libuv's pool and back (which cost more than the writing itself).
 */
const WRITE_DELAY_MS = 10;
const WRITE_BATCH_BYTES = 256 * 1024;
/**
 * Log files open at once, across instances (least recently written first): thousands of
 * chatty instances must not hold thousands of the server's descriptors (the hard limit may be
 * 20,000, and each workload's pipes take three already). Past it the oldest idle one closes.
 */
const MAX_OPEN_FILES = 256;
const openFiles = new Set<InstanceLog>();
/** After a failed open that is not "the instance is gone" (EMFILE, EIO…): try again after this. */
const REOPEN_RETRY_MS = 20;
const EMPTY = Buffer.alloc(0);

export class InstanceLog {
  /** The unfinished last line of each stream, as bytes (at most maxLineBytes). */
  private readonly partial: Record<OutputStream, Buffer> = { stdout: EMPTY, stderr: EMPTY };
  /**
   * The in-memory tail: the batches lines came in, oldest first from ringHead (its first
   * `from` lines already let go). A batch keeps its bytes and makes strings only when the
   * tail is read: a firehose pays no string and no object per line for it.
   */
  private ring: { batch: KeptBatch; from: number }[] = [];
  private ringHead = 0;
  private ringLines = 0;
  private ringBytes = 0;
  private readonly subscribers = new Set<LogSubscriber>();
  private readonly batchSubscribers = new Set<BatchSubscriber>();
  private readonly file: string;
  private fd: number | undefined;
  private size = -1;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Where a firehose's records are built (reused once written). */
  private readonly blocks = new RecordBlocks();
  private droppedForDisk = 0;
  /** A write is on its way to the disk. */
  private writing = false;
  /** The next write starts when this fires (it waits a moment to gather more output). */
  private writeTimer: NodeJS.Timeout | undefined;
  private closeTimer: NodeJS.Timeout | undefined;
  /** `{"t":…,"s":…,"l":"` of the last chunk's time and stream: most chunks share it with the one before. */
  private prefix = { t: -1, stream: '', bytes: EMPTY };
  private idle: (() => void)[] = [];
  /**
   * Bytes of output.log written before this object existed (by an earlier server run):
   * read into the ring on first need, so `logs -f` after a restart starts with the tail too.
   */
  private unseededBytes: number;

  constructor(
    readonly dir: string,
    private readonly cfg: LogsConfig,
  ) {
    this.file = path.join(dir, FILE);
    try {
      this.unseededBytes = statSync(this.file).size;
    } catch {
      this.unseededBytes = 0;
    }
  }

  /**
   * A chunk of output as the driver read it; may hold many lines or part of one. The chunk
   * may be kept (its lines' bytes go to batch subscribers as they are) until the next turn.
   */
  append(stream: OutputStream, chunk: Buffer): void {
    const t = Date.now();
    const before = this.partial[stream];
    if (!before.length) return this.split(t, stream, chunk);
    const nl = chunk.indexOf(10);
    if (nl === -1) return this.split(t, stream, Buffer.concat([before, chunk]));
    // The unfinished line ends here: it goes as a batch of its own (a copy of one line), and
    // the rest of the chunk is read in place (copying every read whole cost more than the rest).
    this.partial[stream] = EMPTY;
    this.split(t, stream, Buffer.concat([before, chunk.subarray(0, nl + 1)]));
    if (nl + 1 < chunk.length) this.split(t, stream, chunk.subarray(nl + 1));
  }

  /** Emits the lines of `data` (the stream's unfinished line is empty) and keeps what follows the last one. */
  private split(t: number, stream: OutputStream, data: Buffer): void {
    const max = this.cfg.maxLineBytes;
    const { ranges, rest, cutsLong } = lineRanges(data, max);
    // An unfinished line longer than max goes out in pieces now; what is left waits for its end.
    const restFrom = cutLong(data, rest, data.length, max, ranges, false);
    this.partial[stream] = restFrom < data.length ? Buffer.from(data.subarray(restFrom)) : EMPTY;
    if (ranges.length) this.emitRanges(t, stream, data, ranges, cutsLong || restFrom > rest);
  }

  /** Ends any partial lines: called when the workload exits. */
  endOfOutput(): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      const rest = this.partial[stream].toString('utf8');
      this.partial[stream] = EMPTY;
      if (rest) this.emit({ t: Date.now(), stream, line: rest });
    }
  }

  /** A line another log already read (an app's log taps its copies'), marked with where it came from. */
  relay(e: LogEntry, source: string): void {
    this.emit({ t: e.t, stream: e.stream, line: e.line, source });
  }

  /** A line from corral itself (started, exited, dropped output), kept with the output. */
  note(line: string): void {
    this.emit({ t: Date.now(), stream: 'corral', line });
  }

  /** Each line, as it comes. */
  subscribe(fn: LogSubscriber): () => void {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }

  /** The lines a batch at a time: for a client that takes many lines in one message. */
  subscribeBatches(fn: BatchSubscriber): () => void {
    this.batchSubscribers.add(fn);
    return () => this.batchSubscribers.delete(fn);
  }

  /** The last `n` lines in memory (at or after `since`, kept by `filter`), oldest first. */
  recent(n = Infinity, since = 0, filter?: LogFilter): LogEntry[] {
    this.seedFromDisk();
    const out: LogEntry[] = [];
    for (let s = this.ring.length - 1; s >= this.ringHead && out.length < n; s--) {
      const { batch, from } = this.ring[s]!;
      const entries = batch.entries;
      for (let i = entries.length - 1; i >= from && out.length < n; i--) {
        const e = entries[i]!;
        if (e.t < since) return out.reverse();
        if (!filter || filter(e)) out.push(e);
      }
    }
    return out.reverse();
  }

  /** Everything kept on disk (at or after `since`, kept by `filter`), oldest first, a file at a time: for downloads. */
  async *all(since = 0, filter?: LogFilter): AsyncGenerator<LogEntry[]> {
    await this.flush();
    for (const file of this.files().reverse()) {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch {
        continue;
      }
      const batch: LogEntry[] = [];
      for (const line of text.split('\n')) {
        const e = parseLine(line);
        if (e && e.t >= since && (!filter || filter(e))) batch.push(e);
      }
      if (batch.length) yield batch;
    }
  }

  /** The last `n` lines on disk (at or after `since`, kept by `filter`), oldest first: survives restarts. */
  async history(n = Infinity, since = 0, filter?: LogFilter): Promise<LogEntry[]> {
    await this.flush();
    const out: LogEntry[] = [];
    for (const file of this.files()) {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch {
        continue;
      }
      const lines = text.split('\n');
      let done = false;
      for (let i = lines.length - 1; i >= 0 && out.length < n; i--) {
        const e = parseLine(lines[i]!);
        if (!e) continue;
        if (e.t < since) {
          done = true;
          break;
        }
        if (!filter || filter(e)) out.push(e);
      }
      if (done || out.length >= n) break;
    }
    return out.reverse();
  }

  /** Resolves once everything appended so far is on disk and the file is closed. */
  flush(): Promise<void> {
    if (!this.writing && !this.pending.length) {
      this.closeFile();
      return Promise.resolve();
    }
    const done = new Promise<void>((resolve) => this.idle.push(resolve));
    this.scheduleWrite(); // someone waits: no gathering
    return done;
  }

  async close(): Promise<void> {
    await this.flush();
    this.closeFile();
    this.subscribers.clear();
    this.batchSubscribers.clear();
  }

  /** Newest first: output.log, output.log.1, … */
  private files(): string[] {
    return [this.file, ...Array.from({ length: this.cfg.keepFiles }, (_, i) => `${this.file}.${i + 1}`)];
  }

  /** Puts the end of an earlier run's log in front of the ring (once). */
  private seedFromDisk(): void {
    const end = this.unseededBytes;
    if (!end || !this.cfg.memoryLines || !this.cfg.memoryBytes) return;
    this.unseededBytes = 0;
    // NDJSON adds ~40 bytes a line; twice the ring's byte budget is plenty to fill it.
    const start = Math.max(0, end - 2 * this.cfg.memoryBytes);
    const buf = Buffer.alloc(end - start);
    let fd: number | undefined;
    try {
      fd = openSync(this.file, 'r');
      readSync(fd, buf, 0, buf.length, start);
    } catch {
      return;
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    const lines = buf.toString('utf8').split('\n');
    if (start > 0) lines.shift(); // began mid-line
    const older = lines.map(parseLine).filter((e): e is LogEntry => e !== undefined);
    const current = this.ring.slice(this.ringHead);
    this.ring = [];
    this.ringHead = 0;
    this.ringLines = 0;
    this.ringBytes = 0;
    for (const e of older) this.remember(new EntriesBatch(e.t, e.stream, [e]));
    for (const { batch, from } of current) this.remember(batch, from);
  }

  /**
   * The lines at `ranges` of `data` (read at `t`) as one batch. `cut`: a long line was cut, so
   * the lines are not simply data's bytes up to the last one.
   */
  private emitRanges(t: number, stream: OutputStream, data: Buffer, ranges: number[], cut: boolean): void {
    const read = data.subarray(0, ranges[ranges.length - 1]);
    if (!isUtf8(read)) {
      // Not UTF-8: each line decoded with replacement characters, and everything built from that text.
      const entries: LogEntry[] = [];
      for (let i = 0; i < ranges.length; i += 2) entries.push({ t, stream, line: data.toString('utf8', ranges[i], ranges[i + 1]) });
      this.emitBatch(new EntriesBatch(t, stream, entries), recordsOf(entries));
      return;
    }
    const batch = new RangesBatch(t, stream, data, ranges, cut ? joinRanges(data, ranges) : read);
    const file = needsJsonEscape(read) ? recordsOf(batch.entries) : ndjsonOf(data, ranges, this.prefixOf(t, stream), this.blocks.room);
    this.emitBatch(batch, file);
  }

  private prefixOf(t: number, stream: LogStream): Buffer {
    if (this.prefix.t !== t || this.prefix.stream !== stream) {
      this.prefix = { t, stream, bytes: Buffer.from(`{"t":${t},"s":"${stream}","l":"`) };
    }
    return this.prefix.bytes;
  }

  private emit(e: LogEntry): void {
    this.emitBatch(new EntriesBatch(e.t, e.stream, [e]), recordsOf([e]));
  }

  private emitBatch(batch: KeptBatch, records: Buffer): void {
    this.remember(batch);
    if (this.subscribers.size) {
      for (const e of batch.entries) for (const fn of this.subscribers) fn(e);
    }
    for (const fn of this.batchSubscribers) fn(batch);
    this.enqueueWrite(records, batch.count, batch.t);
  }

  /** Puts `batch` (but its first `from` lines) in the tail, letting go of the oldest lines past its bounds. */
  private remember(batch: KeptBatch, from = 0): void {
    const { memoryLines, memoryBytes } = this.cfg;
    if (!memoryLines || !memoryBytes) return;
    this.ring.push({ batch, from });
    this.ringLines += batch.count - from;
    for (let i = from; i < batch.count; i++) this.ringBytes += batch.lineBytes(i) + 32;
    while (this.ringLines > memoryLines || this.ringBytes > memoryBytes) {
      const oldest = this.ring[this.ringHead]!;
      this.ringBytes -= oldest.batch.lineBytes(oldest.from) + 32;
      this.ringLines--;
      if (++oldest.from === oldest.batch.count) this.ringHead++;
    }
    if (this.ringHead > 1024 && this.ringHead * 2 > this.ring.length) {
      this.ring = this.ring.slice(this.ringHead);
      this.ringHead = 0;
    }
  }

  /** Queues `records` (the NDJSON of `lines` lines read at `t`) for the file. */
  private enqueueWrite(records: Buffer, lines: number, t: number): void {
    if (this.pendingBytes + records.length > this.cfg.pendingWriteBytes) {
      this.droppedForDisk += lines;
      return;
    }
    if (this.droppedForDisk) {
      const marker = JSON.stringify({ t, s: 'corral', l: `[corral: ${this.droppedForDisk} lines not written: the disk is behind]` });
      this.pending.push(Buffer.from(`${marker}\n`));
      this.droppedForDisk = 0;
    }
    this.pending.push(records);
    this.pendingBytes += records.length;
    this.scheduleWrite();
  }

  /** Starts the next write now if enough waits (or someone waits for it), else soon. */
  private scheduleWrite(): void {
    if (this.writing || !this.pending.length) return;
    if (this.pendingBytes >= WRITE_BATCH_BYTES || this.idle.length) this.writeNext();
    else this.writeTimer ??= setTimeout(() => this.writeOnTimer(), WRITE_DELAY_MS);
  }

  /**
   * The delayed write. A write that starts earlier (enough gathered) leaves the timer be: under
   * a firehose, clearing and setting it per write was a cost of its own (timer list churn).
   */
  private writeOnTimer(): void {
    this.writeTimer = undefined;
    this.writeNext();
  }

  /** Writes everything pending; when that is on disk, what came meanwhile is scheduled. */
  private writeNext(): void {
    if (this.writing) return;
    if (!this.pending.length) return this.wentIdle();
    this.writing = true;
    const data = this.pending;
    this.pending = [];
    const bytes = this.pendingBytes;
    this.pendingBytes = 0;
    const blocks = this.blocks.seal();
    let fd: number;
    try {
      fd = this.openForAppend(bytes);
    } catch (e) {
      this.writing = false;
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        // Out of descriptors or a passing I/O error: the lines wait (pendingWriteBytes bounds them).
        this.pending = [...data, ...this.pending];
        this.pendingBytes += bytes;
        this.blocks.unseal(blocks);
        this.writeTimer ??= setTimeout(() => this.writeOnTimer(), REOPEN_RETRY_MS);
        return;
      }
      for (const resolve of this.idle.splice(0)) resolve();
      return; // the instance dir is gone (deleted): nothing to keep
    }
    // Most recently written last: the first in the set is the one to close for room.
    openFiles.delete(this);
    openFiles.add(this);
    const writeAll = (buffers: Buffer[], left: number) =>
      writev(fd, buffers, null, (err, n) => {
        // A short write (rare on a file) goes on with what is left.
        if (!err && n < left) return writeAll([Buffer.concat(buffers).subarray(n)], left - n);
        this.size += bytes;
        this.writing = false;
        this.blocks.written(blocks);
        if (this.pending.length) this.scheduleWrite();
        else this.wentIdle();
      });
    writeAll(data, bytes);
  }

  /**
   * Nothing more to write: the file is closed until there is (at once if someone waits for
   * that, else after a moment). A quiet instance (most of thousands) then holds no
   * descriptor of the server's for its log.
   */
  private wentIdle(): void {
    const waiting = this.idle.splice(0);
    if (waiting.length) this.closeFile();
    else this.closeTimer ??= setTimeout(() => this.closeIdleFile(), FILE_IDLE_CLOSE_MS).unref();
    for (const resolve of waiting) resolve();
  }

  private closeIdleFile(): void {
    this.closeTimer = undefined;
    if (!this.writing) this.closeFile();
  }

  private closeFile(): void {
    clearTimeout(this.closeTimer);
    this.closeTimer = undefined;
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    openFiles.delete(this);
    this.blocks.release();
  }

  /**
   * Room for one more open log file: at MAX_OPEN_FILES the least recently written idle one
   * is closed; false when all are being written to (the caller tries again shortly).
   */
  private static makeRoomForFile(): boolean {
    if (openFiles.size < MAX_OPEN_FILES) return true;
    for (const log of openFiles) {
      if (log.writing) continue;
      log.closeFile();
      return true;
    }
    return false;
  }

  /** The fd to append `bytes` to, rotating first when the file would pass its cap. */
  private openForAppend(bytes: number): number {
    if (this.fd === undefined) {
      if (!InstanceLog.makeRoomForFile()) throw Object.assign(new Error(`${MAX_OPEN_FILES} log files are being written`), { code: 'EMFILE' });
      this.fd = openSync(this.file, 'a', 0o600);
      openFiles.add(this);
      this.size = fstatSync(this.fd).size;
    }
    if (this.size > 0 && this.size + bytes > this.cfg.fileBytes) {
      this.unseededBytes = 0; // what it counted moves to output.log.1
      closeSync(this.fd);
      this.fd = undefined;
      const files = this.files();
      rmSync(files[files.length - 1]!, { force: true });
      for (let i = files.length - 2; i >= 0; i--) {
        try {
          renameSync(files[i]!, files[i + 1]!);
        } catch {
          /* not there yet */
        }
      }
      if (!this.cfg.keepFiles) rmSync(this.file, { force: true });
      this.fd = openSync(this.file, 'a', 0o600);
      this.size = 0;
    }
    return this.fd;
  }
}

/** A batch as the tail keeps it: it can tell each line's size (for the tail's byte bound). */
interface KeptBatch extends LineBatch {
  lineBytes(i: number): number;
}

/** Lines that are strings already (notes, relayed lines, lines decoded with replacements); bytes made when asked for. */
class EntriesBatch implements KeptBatch {
  private joined: Buffer | undefined;
  readonly source: string | undefined;
  constructor(
    readonly t: number,
    readonly stream: LogStream,
    readonly entries: LogEntry[],
  ) {
    this.source = entries[0]?.source;
  }
  get count(): number {
    return this.entries.length;
  }
  get bytes(): Buffer {
    return (this.joined ??= Buffer.from(this.entries.map((e) => e.line).join('\n')));
  }
  lineBytes(i: number): number {
    return this.entries[i]!.line.length;
  }
}

/** Lines that are ranges of a read's bytes (valid UTF-8); strings made when first asked for. */
class RangesBatch implements KeptBatch {
  private lines: LogEntry[] | undefined;
  readonly source = undefined;
  constructor(
    readonly t: number,
    readonly stream: LogStream,
    private readonly data: Buffer,
    private readonly ranges: number[],
    readonly bytes: Buffer,
  ) {}
  get count(): number {
    return this.ranges.length >> 1;
  }
  get entries(): LogEntry[] {
    return (this.lines ??= this.decode());
  }
  lineBytes(i: number): number {
    return this.ranges[2 * i + 1]! - this.ranges[2 * i]!;
  }
  private decode(): LogEntry[] {
    const { t, stream, data, ranges } = this;
    const read = data.subarray(0, ranges[ranges.length - 1]);
    // ASCII: one string for the read, each line a slice of it (no copy).
    const text = isAscii(read) ? read.toString('latin1') : undefined;
    const out: LogEntry[] = [];
    for (let i = 0; i < ranges.length; i += 2) {
      out.push({ t, stream, line: text ? text.slice(ranges[i], ranges[i + 1]) : data.toString('utf8', ranges[i], ranges[i + 1]) });
    }
    return out;
  }
}

/** The entries as NDJSON records, one a line: the same as JSON.stringify({t, s, c, l}), without an object per line. */
function recordsOf(entries: LogEntry[]): Buffer {
  let text = '';
  for (const e of entries) {
    text += `{"t":${e.t},"s":"${e.stream}",${e.source === undefined ? '' : `"c":${JSON.stringify(e.source)},`}"l":${JSON.stringify(e.line)}}\n`;
  }
  return Buffer.from(text);
}

function parseLine(text: string): LogEntry | undefined {
  if (!text) return undefined;
  try {
    const o = JSON.parse(text) as { t: number; s: LogStream; l: string; c?: string };
    return o.c === undefined ? { t: o.t, stream: o.s, line: o.l } : { t: o.t, stream: o.s, line: o.l, source: o.c };
  } catch {
    return undefined;
  }
}

/** A network client that receives lines: a WebSocket or a streaming HTTP reply. */
export interface LineSink {
  send(text: string): void;
  /** Bytes queued for the client and not yet taken by the kernel. */
  buffered(): number;
}

/** A network client that receives batches of lines as one message each (attach's text frames). */
export interface BatchSink {
  send(bytes: Buffer): void;
  /** Bytes queued for the client and not yet taken by the kernel. */
  buffered(): number;
}

const droppedNote = (n: number) => `[corral: ${n} lines dropped: the client is too slow]`;

/**
 * Forwards entries to a sink without ever buffering more than `capBytes` for it: while the
 * client is behind, entries are dropped and counted, and the next entry that fits is
 * preceded by a marker saying how many were lost. The child and other clients never wait.
 */
export function forwardBounded(
  sink: LineSink,
  capBytes: number,
  format: (e: LogEntry) => string,
): LogSubscriber {
  const admit = admission(sink.buffered, capBytes, (t, n) => sink.send(format({ t, stream: 'corral', line: droppedNote(n) })));
  return (e) => {
    if (admit(e.t, 1)) sink.send(format(e));
  };
}

/** What a batch becomes for one kind of client: its bytes and how many lines they hold (none: undefined), and the marker's. */
export interface BatchFormat {
  batch(b: LineBatch): { data: Buffer; lines: number } | undefined;
  marker(note: LogEntry): Buffer;
}

/** Attach's text frames: the lines' bytes as they came, separated by "\n". */
const textFrames: BatchFormat = { batch: (b) => ({ data: b.bytes, lines: b.count }), marker: (e) => Buffer.from(e.line) };

/** forwardBounded for a sink that takes a batch of lines at a time: a batch goes whole or not at all. */
export function forwardBoundedBatches(sink: BatchSink, capBytes: number, format: BatchFormat = textFrames): BatchSubscriber {
  const admit = admission(sink.buffered, capBytes, (t, n) => sink.send(format.marker({ t, stream: 'corral', line: droppedNote(n) })));
  return (b) => {
    const out = format.batch(b);
    if (out && admit(b.t, out.lines)) sink.send(out.data);
  };
}

/**
 * The bookkeeping of a bounded forwarder: may `lines` lines read at `t` be sent now? While
 * more than `capBytes` wait for the client they are counted instead, and before the next that
 * may go (or once the client caught up, even if nothing more comes) `sendMarker` says how many.
 */
function admission(buffered: () => number, capBytes: number, sendMarker: (t: number, dropped: number) => void) {
  let dropped = 0;
  let watcher: NodeJS.Timeout | undefined;
  const flushMarker = (t: number) => {
    sendMarker(t, dropped);
    dropped = 0;
    clearInterval(watcher);
    watcher = undefined;
  };
  return (t: number, lines: number): boolean => {
    if (buffered() > capBytes) {
      dropped += lines;
      // Say so once the client catches up, even if no further line comes.
      let waited = 0;
      watcher ??= setInterval(() => {
        if (buffered() <= capBytes) flushMarker(Date.now());
        else if ((waited += MARKER_POLL_MS) > MARKER_GIVE_UP_MS) {
          clearInterval(watcher);
          watcher = undefined;
        }
      }, MARKER_POLL_MS).unref();
      return false;
    }
    if (dropped) flushMarker(t);
    return true;
  };
}
