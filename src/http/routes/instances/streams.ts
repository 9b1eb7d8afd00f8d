/**
 * The streaming routes of instances: logs (tail, or follow as text or NDJSON), the attach
 * WebSocket (output out, stdin in) and the event stream (SSE) of state changes. Every
 * stream forwards through `forwardBounded`, so a slow client loses lines (with a marker)
 * instead of growing the server's memory or stalling the child. Open streams end when the
 * server closes.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyReply } from 'fastify';
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { RawData, WebSocket } from 'ws';
import type { Corral } from '../../../core/corral.js';
import { errors } from '../../../core/errors.js';
import { forwardBounded, type LineSink, type LogEntry } from '../../../core/instances/index.js';
import { requireScope } from '../../auth.js';

const tags = ['instances'];
const RefParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }) });
const HEARTBEAT_MS = 15_000;

const text = (e: LogEntry) => `${e.stream === 'corral' ? '[corral] ' : ''}${e.line}\n`;
const ndjson = (e: LogEntry) => `${JSON.stringify({ t: new Date(e.t).toISOString(), stream: e.stream, line: e.line })}\n`;

function parseSince(since: string | undefined): number {
  if (since === undefined || since === '') return 0;
  const ms = /^\d+$/.test(since) ? Number(since) : Date.parse(since);
  if (!Number.isFinite(ms)) throw errors.validation('querystring.since: give an ISO date or milliseconds since the epoch');
  return ms;
}

/**
 * A WebSocket as a LineSink whose frames of one tick leave in one write: a chunk of output
 * holds many lines, and one frame per line would otherwise cost one syscall each.
 */
export function corkedSink(socket: WebSocket): LineSink {
  const raw = (socket as unknown as { _socket?: Socket })._socket;
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

export const instanceStreamRoutes: FastifyPluginAsyncTypebox<{ corral: Corral }> = async (app, { corral }) => {
  const service = corral.instances.service;
  const clientCap = corral.config.instances.logs.clientBufferBytes;
  const open = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const end of open) end();
  });

  /** Starts a long-lived streaming reply that ends when the client leaves or the server closes. */
  function stream(reply: FastifyReply, contentType: string, onEnd: () => void): ServerResponse {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    const end = () => {
      if (!open.delete(end)) return;
      onEnd();
      res.end();
    };
    open.add(end);
    res.on('close', end);
    return res;
  }

  app.get(
    '/instances/:id/logs',
    {
      schema: {
        summary: 'Output of an instance: the last lines, or follow it live',
        tags,
        params: RefParams,
        querystring: Type.Object(
          {
            tail: Type.Optional(Type.Integer({ minimum: 0, maximum: 100_000, description: 'last N lines (default 100)' })),
            since: Type.Optional(Type.String({ description: 'ISO date or ms since the epoch' })),
            follow: Type.Optional(Type.Boolean()),
            format: Type.Optional(Type.Union([Type.Literal('text'), Type.Literal('ndjson')], { description: 'default text' })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      const { user } = requireScope(request, 'instances:read');
      const { tail = 100, follow = false, format = 'text' } = request.query;
      const since = parseSince(request.query.since);
      const fmt = format === 'ndjson' ? ndjson : text;
      const contentType = format === 'ndjson' ? 'application/x-ndjson' : 'text/plain; charset=utf-8';
      const { log } = await service.output(user, request.params.id);
      if (!follow) {
        const lines = await log.history(tail, since);
        return reply.type(contentType).header('cache-control', 'no-store').send(lines.map(fmt).join(''));
      }
      // The tail comes from memory in the same tick as the subscription: no gap, no repeat.
      let unsubscribe = () => {};
      const res = stream(reply, contentType, () => unsubscribe());
      for (const e of log.recent(tail, since)) res.write(fmt(e));
      const sink = { send: (t: string) => void res.write(t), buffered: () => res.writableLength };
      unsubscribe = log.subscribe(forwardBounded(sink, clientCap, fmt));
    },
  );

  app.get(
    '/instances/:id/attach',
    {
      websocket: true,
      schema: {
        summary: 'WebSocket: output lines out (JSON {stream,line} with streams=1), frames in go to stdin',
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
      const fmt = ['1', 'true'].includes(request.query.streams ?? '')
        ? (e: LogEntry) => JSON.stringify({ stream: e.stream, line: e.line })
        : (e: LogEntry) => e.line;
      const forward = forwardBounded(corkedSink(socket), clientCap, fmt);
      const unsubscribe = log.subscribe((e) => {
        if (e.stream !== 'corral') forward(e);
      });
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
