/**
 * The streaming routes of instances: logs (tail, search, download, or follow as text or
 * NDJSON: see ../log-replies.ts), the attach
 * WebSocket (output out, stdin in) and the event stream (SSE) of state changes. Every
 * stream forwards through `forwardBounded`, so a slow client loses lines (with a marker)
 * instead of growing the server's memory or stalling the child. Open streams end when the
 * server closes.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Socket } from 'node:net';
import type { RawData, WebSocket } from 'ws';
import type { Corral } from '../../../core/corral.js';
import { forwardBounded, forwardBoundedBatches, type BatchSink, type LineSink, type LogEntry } from '../../../core/instances/index.js';
import { requireScope } from '../../auth.js';
import { LogQuerySchema, replyWithLog, streamingReplies } from '../log-replies.js';

const tags = ['instances'];
const RefParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }) });
const HEARTBEAT_MS = 15_000;
const NEWLINE = Buffer.from('\n');
/**
 * Batches smaller than this that come in one turn are joined into one frame (up to this size):
 * a child writing a line now and then, or small pieces, does not cost a frame each. A larger
 * batch (a read of a firehose, up to 64 KiB) is a frame by itself: joining it would copy it.
 */
const JOIN_BYTES = 16 * 1024;

/**
 * A WebSocket as a LineSink whose frames of one tick leave in one write: a chunk of output
 * holds many lines, and one frame per line would otherwise cost one syscall each.
 */
export function corkedSink(socket: WebSocket): LineSink {
  const raw = rawSocket(socket);
  let corked = false;
  return {
    send(text) {
      if (raw && !corked) {
        corked = true;
        raw.cork();
        process.nextTick(() => {
          corked = false;
          raw.uncork();
        });
      }
      socket.send(text);
    },
    buffered: () => socket.bufferedAmount,
  };
}

function rawSocket(socket: WebSocket): Socket | undefined {
  return (socket as unknown as { _socket?: Socket })._socket;
}

/**
 * A WebSocket as a BatchSink for text frames: the batches of lines that come in one turn of
 * the event loop (each a read of the child's output, already as bytes separated by "\n") go
 * out at its end, in one write: small ones joined into a frame (by "\n"), a large one a frame
 * of its own, its bytes as read (no copy). Under a firehose that is a frame per read and one
 * write per turn instead of one each per line — the frame, not the line, was what cost — and
 * no line is turned into a string and back (docs/benchmarks.md). A lone line still goes out
 * at once, alone.
 */
export function batchingSink(socket: WebSocket): BatchSink {
  let waiting: Buffer[] = [];
  const flush = () => {
    const batches = waiting;
    waiting = [];
    if (socket.readyState !== socket.OPEN) return;
    const raw = rawSocket(socket);
    raw?.cork();
    for (let i = 0; i < batches.length; ) {
      const frame = [batches[i]!];
      let bytes = batches[i++]!.length;
      while (i < batches.length && bytes + batches[i]!.length < JOIN_BYTES) {
        frame.push(NEWLINE, batches[i]!);
        bytes += batches[i++]!.length + 1;
      }
      socket.send(frame.length === 1 ? frame[0]! : Buffer.concat(frame, bytes), { binary: false });
    }
    raw?.uncork();
  };
  return {
    send(bytes) {
      if (!waiting.length) setImmediate(flush);
      waiting.push(bytes);
    },
    // What waits for the end of the turn is not "behind": counting it would drop lines of a
    // client that keeps up whenever one turn reads more than the cap. It is bounded by what
    // one turn reads, and counts from the next turn on.
    buffered: () => socket.bufferedAmount,
  };
}

export const instanceStreamRoutes: FastifyPluginAsyncTypebox<{ corral: Corral }> = async (app, { corral }) => {
  const service = corral.instances.service;
  const clientCap = corral.config.instances.logs.clientBufferBytes;
  const streams = streamingReplies(app);
  const { open } = streams;
  const stream = streams.start;

  app.get(
    '/instances/:id/logs',
    {
      schema: {
        summary: 'Output of an instance: the last lines, a search or a download of everything kept, or follow it live',
        tags,
        params: RefParams,
        querystring: LogQuerySchema,
      },
    },
    async (request, reply) => {
      const { user } = requireScope(request, 'instances:read');
      const { instance, log } = await service.output(user, request.params.id);
      return replyWithLog(reply, log, request.query, { name: instance.name, streams, clientCap });
    },
  );

  app.get(
    '/instances/:id/attach',
    {
      websocket: true,
      schema: {
        summary: 'WebSocket: output lines out (the lines read together in one frame, separated by \\n; JSON {stream,line} per frame with streams=1), frames in go to stdin',
        tags,
        params: RefParams,
        querystring: Type.Object(
          {
            streams: Type.Optional(Type.Union(['1', '0', 'true', 'false'].map((v) => Type.Literal(v)), { description: '1: JSON frames {stream, line}' })),
            token: Type.Optional(Type.String()),
          },
          { additionalProperties: false },
        ),
      },
      // Checked before the handshake: an unknown or foreign instance is a plain 404.
      preValidation: async (request) => {
        const { user } = requireScope(request, 'instances:write');
        await service.find(user, (request.params as { id: string }).id);
      },
    },
    async (socket: WebSocket, request) => {
      const { user } = requireScope(request, 'instances:write');
      const { instance, log } = await service.output(user, request.params.id);
      const json = ['1', 'true'].includes(request.query.streams ?? '');
      const fmt = json ? (e: LogEntry) => JSON.stringify({ stream: e.stream, line: e.line }) : (e: LogEntry) => e.line;
      // A JSON frame stays one line (clients parse each frame); text frames may carry several.
      let unsubscribe: () => void;
      if (json) {
        const forward = forwardBounded(corkedSink(socket), clientCap, fmt);
        unsubscribe = log.subscribe((e) => e.stream !== 'corral' && forward(e));
      } else {
        const forward = forwardBoundedBatches(batchingSink(socket), clientCap);
        unsubscribe = log.subscribeBatches((b) => b.stream !== 'corral' && forward(b));
      }
      const unwatch = service.subscribe(user, (e) => {
        if (e.id === instance.id && e.type === 'deleted') socket.close(1000, 'instance deleted');
      });
      const end = () => socket.close(1001, 'server shutting down');
      open.add(end);
      socket.on('message', (data: RawData, isBinary: boolean) => {
        const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer);
        if (!service.writeStdin(instance.id, isBinary ? buf : buf.toString('utf8'))) {
          socket.send(fmt({ t: Date.now(), stream: 'corral', line: '[corral: the instance is not running; input dropped]' }));
        }
      });
      socket.on('close', () => {
        open.delete(end);
        unsubscribe();
        unwatch();
      });
    },
  );

  app.get(
    '/events',
    {
      schema: {
        summary:
          'Server-sent events: state changes of your instances (all, for admins); every few seconds `stats`, their newest CPU and memory samples (admins: with the server\'s)',
        tags,
      },
    },
    async (request, reply) => {
      const { user } = requireScope(request, 'instances:read');
      const admin = user.role === 'admin';
      let unsubscribe = () => {};
      let unsubscribeStats = () => {};
      let heartbeat: NodeJS.Timeout | undefined;
      const res = stream(reply, 'text/event-stream; charset=utf-8', () => {
        unsubscribe();
        unsubscribeStats();
        clearInterval(heartbeat);
      });
      res.write(': corral instance events\nretry: 2000\n\n');
      heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
      let dropped = 0;
      const send = (type: string, data: unknown) => {
        // A client this far behind misses events; it can re-read the list to catch up.
        if (res.writableLength > clientCap) return void dropped++;
        if (dropped) res.write(`event: dropped\ndata: ${JSON.stringify({ dropped })}\n\n`);
        dropped = 0;
        res.write(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
      };
      unsubscribe = service.subscribe(user, (e) => send(e.type, e));
      unsubscribeStats = corral.stats.subscribe((tick) => {
        const instances = tick.instances.filter((s) => admin || s.ownerId === user.id).map(({ ownerId: _o, ...s }) => s);
        if (instances.length || admin) send('stats', { t: tick.t, instances, ...(admin && { server: tick.server }) });
      });
    },
  );
};
