/**
 * How a kept log goes out over HTTP — an instance's (instances/streams.ts) and an app's
 * (apps.ts) alike: the last lines, a search in everything kept, a download of it all, or
 * follow it live (as text or NDJSON). A follower gets the lines read together in one write
 * (still a line per record) through `forwardBoundedBatches`, so a slow client loses lines
 * (with a marker) instead of growing the server's memory.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ServerResponse } from 'node:http';
import { errors } from '../../core/errors.js';
import { forwardBoundedBatches, type LogEntry } from '../../core/instances/index.js';
import type { BatchFormat, InstanceLog, LogFilter } from '../../core/instances/logs.js';

export const LogQuerySchema = Type.Object(
  {
    tail: Type.Optional(Type.Integer({ minimum: 0, maximum: 100_000, description: 'last N lines (default 100; with download: all)' })),
    since: Type.Optional(Type.String({ description: 'ISO date or ms since the epoch' })),
    follow: Type.Optional(Type.Boolean()),
    format: Type.Optional(Type.Union([Type.Literal('text'), Type.Literal('ndjson')], { description: 'default text' })),
    search: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'only lines containing this text (any case), searched in everything kept' })),
    timestamps: Type.Optional(Type.Boolean({ description: 'text: begin each line with its time and stream' })),
    download: Type.Optional(Type.Boolean({ description: 'everything kept as an attachment (text with timestamps unless format=ndjson)' })),
  },
  { additionalProperties: false },
);
export type LogQuery = Static<typeof LogQuerySchema>;

function parseSince(since: string | undefined): number {
  if (since === undefined || since === '') return 0;
  const ms = /^\d+$/.test(since) ? Number(since) : Date.parse(since);
  if (!Number.isFinite(ms)) throw errors.validation('querystring.since: give an ISO date or milliseconds since the epoch');
  return ms;
}

const prefix = (e: LogEntry) => `${e.source === undefined ? '' : `[${e.source}] `}${e.stream === 'corral' ? '[corral] ' : ''}`;
const text = (e: LogEntry) => `${prefix(e)}${e.line}\n`;
const stamped = (e: LogEntry) => `${new Date(e.t).toISOString()} ${e.stream.padEnd(6)} ${prefix(e)}${e.line}\n`;
export const ndjson = (e: LogEntry) =>
  `${JSON.stringify({ t: new Date(e.t).toISOString(), stream: e.stream, ...(e.source !== undefined && { source: e.source }), line: e.line })}\n`;

const NEWLINE = Buffer.from('\n');

/**
 * What a follower gets of a batch: its lines' records (those the search keeps) in one buffer.
 * Plain text of output lines is the bytes as read, each line ended by "\n" (no strings made).
 */
function followFormat(fmt: (e: LogEntry) => string, filter: LogFilter): BatchFormat {
  return {
    batch(b) {
      if (fmt === text && !filter && b.stream !== 'corral' && b.source === undefined) {
        return { data: Buffer.concat([b.bytes, NEWLINE]), lines: b.count };
      }
      let out = '';
      let lines = 0;
      for (const e of b.entries) {
        if (filter && !filter(e)) continue;
        out += fmt(e);
        lines++;
      }
      return lines ? { data: Buffer.from(out), lines } : undefined;
    },
    marker: (e) => Buffer.from(fmt(e)),
  };
}

function searchFilter(search: string | undefined): LogFilter {
  if (search === undefined) return undefined;
  const needle = search.toLowerCase();
  return (e) => e.line.toLowerCase().includes(needle);
}

/** Long-lived streaming replies of one plugin, ended when the client leaves or the server closes. */
export function streamingReplies(app: FastifyInstance) {
  const open = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const end of open) end();
  });
  return {
    open,
    /** Starts a streaming reply; `onEnd` runs once when it ends. */
    start(reply: FastifyReply, contentType: string, onEnd: () => void, headers: Record<string, string> = {}): ServerResponse {
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { ...headers, 'content-type': contentType, 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
      res.flushHeaders(); // a follower with nothing to read yet still learns the stream is open
      const end = () => {
        if (!open.delete(end)) return;
        onEnd();
        res.end();
      };
      open.add(end);
      res.on('close', end);
      return res;
    },
  };
}
export type StreamingReplies = ReturnType<typeof streamingReplies>;

/** Answers a log request; `name` names the download. */
export async function replyWithLog(
  reply: FastifyReply,
  log: InstanceLog,
  query: LogQuery,
  opts: { name: string; streams: StreamingReplies; clientCap: number },
): Promise<unknown> {
  const { follow = false, format = 'text', download = false } = query;
  if (download && follow) throw errors.validation('querystring: a download cannot follow; leave out follow or download');
  const since = parseSince(query.since);
  const filter = searchFilter(query.search);
  const fmt = format === 'ndjson' ? ndjson : download || query.timestamps ? stamped : text;
  const contentType = format === 'ndjson' ? 'application/x-ndjson' : 'text/plain; charset=utf-8';

  if (download) {
    let ended = false;
    const res = opts.streams.start(reply, contentType, () => (ended = true), {
      'content-disposition': `attachment; filename="${opts.name.replace(/[^a-zA-Z0-9._-]/g, '_')}.log"`,
    });
    // A file at a time, waiting for the client between files; stops when it leaves.
    const batches = query.tail === undefined ? log.all(since, filter) : [await log.history(query.tail, since, filter)];
    for await (const batch of batches) {
      if (ended) break;
      if (!res.write(batch.map(fmt).join(''))) await new Promise((resolve) => (res.once('drain', resolve), res.once('close', resolve)));
    }
    res.end(); // its 'close' takes it off the open streams
    return reply;
  }
  const tail = query.tail ?? 100;
  if (!follow) {
    const lines = await log.history(tail, since, filter);
    return reply.type(contentType).header('cache-control', 'no-store').send(lines.map(fmt).join(''));
  }
  // The tail comes from memory in the same tick as the subscription: no gap, no repeat.
  let unsubscribe = () => {};
  const res = opts.streams.start(reply, contentType, () => unsubscribe());
  const lines = log.recent(tail, since, filter);
  if (lines.length) res.write(lines.map(fmt).join(''));
  const sink = { send: (data: Buffer) => void res.write(data), buffered: () => res.writableLength };
  unsubscribe = log.subscribeBatches(forwardBoundedBatches(sink, opts.clientCap, followFormat(fmt, filter)));
  return reply;
}
