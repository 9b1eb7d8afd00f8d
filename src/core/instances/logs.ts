/**
 * An instance's output: stdout and stderr split into timestamped lines, each marked with
 * its stream (stdout, stderr, or `corral` for corral's own notes), kept in a small in-memory
 * ring (for `logs -f` and quick tails) and appended as NDJSON to rotating files in the
 * instance dir (`logs/output.log`, `.1` … `.keepFiles`). An app's log is one too, fed
 * with its copies' lines (each marked with the copy: `source`).
 *
 * Memory is bounded everywhere: the ring by lines and bytes, a partial line by
 * maxLineBytes (longer lines are split), output waiting for the disk by pendingWriteBytes
 * (past it, lines are dropped and a marker line says how many). Subscribers are called
 * synchronously and must not block; `forwardBounded` is how a network client subscribes
 * without ever stalling the child or the other clients.
 */
import { closeSync, fstatSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, write } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { OutputStream } from '../../drivers/driver.js';
import type { InstancesConfig } from './config.js';

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

const FILE = 'output.log';
/** How often a forwarder that dropped lines checks whether its client caught up, and for how long. */
const MARKER_POLL_MS = 200;
const MARKER_GIVE_UP_MS = 60_000;

export class InstanceLog {
  private readonly decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
  private readonly partial = { stdout: '', stderr: '' };
  private ring: LogEntry[] = [];
  private ringHead = 0;
  private ringBytes = 0;
  private readonly subscribers = new Set<LogSubscriber>();
  private readonly file: string;
  private fd: number | undefined;
  private size = -1;
  private pending: string[] = [];
  private pendingBytes = 0;
  private droppedForDisk = 0;
  private writing = false;
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

  /** A chunk of output as the driver read it; may hold many lines or part of one. */
  append(stream: OutputStream, chunk: Buffer): void {
    const t = Date.now();
    const text = this.partial[stream] + this.decoders[stream].write(chunk);
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      this.emitLong(t, stream, text.slice(start, nl));
      start = nl + 1;
    }
    let rest = text.slice(start);
    while (rest.length > this.cfg.maxLineBytes) {
      this.emit({ t, stream, line: rest.slice(0, this.cfg.maxLineBytes) });
      rest = rest.slice(this.cfg.maxLineBytes);
    }
    this.partial[stream] = rest;
  }

  /** Ends any partial lines: called when the workload exits. */
  endOfOutput(): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      const rest = this.partial[stream] + this.decoders[stream].end();
      this.partial[stream] = '';
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

  subscribe(fn: LogSubscriber): () => void {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }

  /** The last `n` lines in memory (at or after `since`, kept by `filter`), oldest first. */
  recent(n = Infinity, since = 0, filter?: LogFilter): LogEntry[] {
    this.seedFromDisk();
    const out: LogEntry[] = [];
    for (let i = this.ring.length - 1; i >= this.ringHead && out.length < n; i--) {
      const e = this.ring[i]!;
      if (e.t < since) break;
      if (!filter || filter(e)) out.push(e);
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

  /** Resolves once everything appended so far is on disk. */
  flush(): Promise<void> {
    if (!this.writing && !this.pending.length) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  async close(): Promise<void> {
    await this.flush();
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    this.subscribers.clear();
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
    this.ringBytes = 0;
    for (const e of [...older, ...current]) this.remember(e);
  }

  private emitLong(t: number, stream: OutputStream, line: string): void {
    const max = this.cfg.maxLineBytes;
    for (let i = 0; i < line.length; i += max) this.emit({ t, stream, line: line.slice(i, i + max) });
    if (!line.length) this.emit({ t, stream, line });
  }

  private emit(e: LogEntry): void {
    this.remember(e);
    for (const fn of this.subscribers) fn(e);
    this.enqueueWrite(e);
  }

  private remember(e: LogEntry): void {
    if (!this.cfg.memoryLines || !this.cfg.memoryBytes) return;
    this.ring.push(e);
    this.ringBytes += e.line.length + 32;
    while (this.ring.length - this.ringHead > this.cfg.memoryLines || this.ringBytes > this.cfg.memoryBytes) {
      this.ringBytes -= this.ring[this.ringHead]!.line.length + 32;
      this.ringHead++;
    }
    if (this.ringHead > 1024 && this.ringHead * 2 > this.ring.length) {
      this.ring = this.ring.slice(this.ringHead);
      this.ringHead = 0;
    }
  }

  private enqueueWrite(e: LogEntry): void {
    // The same NDJSON as JSON.stringify({t, s, l}), without building an object per line.
    const text = `{"t":${e.t},"s":"${e.stream}",${e.source === undefined ? '' : `"c":${JSON.stringify(e.source)},`}"l":${JSON.stringify(e.line)}}\n`;
    if (this.pendingBytes + text.length > this.cfg.pendingWriteBytes) {
      this.droppedForDisk++;
      return;
    }
    if (this.droppedForDisk) {
      const marker = JSON.stringify({ t: e.t, s: 'corral', l: `[corral: ${this.droppedForDisk} lines not written: the disk is behind]` });
      this.pending.push(`${marker}\n`);
      this.droppedForDisk = 0;
    }
    this.pending.push(text);
    this.pendingBytes += text.length;
    if (!this.writing) {
      this.writing = true;
      setImmediate(() => this.writeNext());
    }
  }

  private writeNext(): void {
    if (!this.pending.length) {
      // Nothing more to write: the file is closed until there is. A quiet instance (most of
      // thousands) then holds no descriptor of the server's for its log.
      if (this.fd !== undefined) closeSync(this.fd);
      this.fd = undefined;
      this.writing = false;
      for (const resolve of this.idle.splice(0)) resolve();
      return;
    }
    const data = Buffer.from(this.pending.join(''));
    this.pending = [];
    this.pendingBytes = 0;
    let fd: number;
    try {
      fd = this.openForAppend(data.length);
    } catch {
      this.writing = false;
      for (const resolve of this.idle.splice(0)) resolve();
      return; // the instance dir is gone (deleted): nothing to keep
    }
    const writeFrom = (offset: number) =>
      write(fd, data, offset, data.length - offset, null, (err, n) => {
        if (!err && offset + n < data.length) return writeFrom(offset + n);
        this.size += data.length;
        this.writeNext();
      });
    writeFrom(0);
  }

  /** The fd to append `bytes` to, rotating first when the file would pass its cap. */
  private openForAppend(bytes: number): number {
    if (this.fd === undefined) {
      this.fd = openSync(this.file, 'a', 0o600);
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
  let dropped = 0;
  let watcher: NodeJS.Timeout | undefined;
  const flushMarker = (t: number) => {
    sink.send(format({ t, stream: 'corral', line: `[corral: ${dropped} lines dropped: the client is too slow]` }));
    dropped = 0;
    clearInterval(watcher);
    watcher = undefined;
  };
  return (e) => {
    if (sink.buffered() > capBytes) {
      dropped++;
      // Say so once the client catches up, even if no further line comes.
      let waited = 0;
      watcher ??= setInterval(() => {
        if (sink.buffered() <= capBytes) flushMarker(Date.now());
        else if ((waited += MARKER_POLL_MS) > MARKER_GIVE_UP_MS) {
          clearInterval(watcher);
          watcher = undefined;
        }
      }, MARKER_POLL_MS).unref();
      return;
    }
    if (dropped) flushMarker(e.t);
    sink.send(format(e));
  };
}
