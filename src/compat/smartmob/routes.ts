/**
 * smartmob-agent's hypermedia process API (see docs/compat.md): index, create-process,
 * list-processes, process-status, delete-process and the attach-console WebSocket, over
 * the instances service. Every link is absolute (scheme and Host of the request, ws:// or
 * wss:// for attach). Bodies are JSON whatever their content type (the old clients sent
 * none); every response echoes `X-Request-Id` (or a new uuid4).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { RawData, WebSocket } from 'ws';
import { errors } from '../../core/errors.js';
import { forwardBounded } from '../../core/instances/index.js';
import { ErrorBody } from '../../http/errors.js';
import { corkedSink } from '../../http/routes/instances/streams.js';
import { asBuffer } from '../../http/routes/relay.js';
import { compatUser } from '../auth.js';
import { acceptJsonOfAnyType } from '../json-body.js';
import type { CompatPluginOptions } from '../index.js';
import { oldState, SmartmobProcesses, type ProcessView } from './processes.js';
import {
  CreateProcessSchema,
  DeleteProcessSchema,
  IndexSchema,
  ListingSchema,
  ProcessDocumentSchema,
  SlugParams,
  type ProcessDocument,
} from './schemas.js';

const tags = ['smartmob-agent'];
/** A request id we echo must be one printable token; anything else gets a fresh uuid4. */
const REQUEST_ID = /^[\x21-\x7e]{1,200}$/;

export const smartmobAgent: FastifyPluginAsyncTypebox<CompatPluginOptions<'smartmobAgent'>> = async (app, { corral, settings }) => {
  const processes = new SmartmobProcesses(corral);
  const clientCap = corral.config.instances.logs.clientBufferBytes;
  const prefix = app.prefix;
  const userFor = (request: FastifyRequest, write: boolean) =>
    compatUser(corral, request, settings, write ? 'instances:write' : 'instances:read');

  app.addHook('onRequest', async (request, reply) => {
    const sent = request.headers['x-request-id'];
    const id = typeof sent === 'string' && REQUEST_ID.test(sent) ? sent : randomUUID();
    void reply.header('x-request-id', id);
    requestIds.set(request.raw, id);
  });
  // The attach handshake's 101 is written by ws, not fastify: add the id there.
  const requestIds = new WeakMap<IncomingMessage, string>();
  app.websocketServer.on('headers', (headers: string[], req: IncomingMessage) => {
    const id = requestIds.get(req);
    if (id) headers.push(`X-Request-Id: ${id}`);
  });

  acceptJsonOfAnyType(app, corral.config.bodyLimitBytes);

  /**
   * An absolute link to `path`. A client that only knows a root URL with `?token=` (an old
   * client cannot send headers it never knew about) gets links that carry it too.
   */
  const link = (request: FastifyRequest, scheme: 'http' | 'ws', path: string) => {
    const secure = request.protocol === 'https';
    const token = (request.query as { token?: unknown } | undefined)?.token;
    const query = typeof token === 'string' && token ? `?token=${encodeURIComponent(token)}` : '';
    return `${scheme}${secure ? 's' : ''}://${request.headers.host ?? 'localhost'}${prefix}${path}${query}`;
  };
  const document = (request: FastifyRequest, { process, instance }: ProcessView): ProcessDocument => {
    const slug = encodeURIComponent(process.slug);
    const details = link(request, 'http', `/process-status/${slug}`);
    return {
      app: process.app,
      node: process.node,
      slug: process.slug,
      state: oldState(instance),
      attach: link(request, 'ws', `/attach-console/${slug}`),
      details,
      status: details,
      delete: link(request, 'http', `/delete-process/${slug}`),
      corral: { instance: instance.id, state: instance.state, restartCount: instance.restartCount, lastError: instance.lastError },
    };
  };

  // Unknown paths get their 404 here, inside this API's hooks (so with X-Request-Id too).
  app.all('/*', { schema: { hide: true } }, async (request) => {
    throw errors.notFound(`no route for ${request.method} ${request.url.split('?')[0]}`);
  });

  app.get('/', { schema: { summary: 'Index: links to list and create', tags, response: { 200: IndexSchema } } }, async (request) => {
    await userFor(request, false);
    return { list: link(request, 'http', '/list-processes'), create: link(request, 'http', '/create-process') };
  });

  app.post(
    '/create-process',
    {
      schema: {
        summary: 'Start a Procfile process from source_url (restarted until deleted)',
        tags,
        body: CreateProcessSchema,
        response: { 201: ProcessDocumentSchema, 400: ErrorBody, 401: ErrorBody, 409: ErrorBody },
      },
    },
    async (request, reply) => {
      const user = await userFor(request, true);
      const doc = document(request, await processes.create(user, request.body));
      return reply.code(201).header('location', doc.details).send(doc);
    },
  );

  app.get('/list-processes', { schema: { summary: 'Your processes', tags, response: { 200: ListingSchema } } }, async (request) => {
    const user = await userFor(request, false);
    return { processes: (await processes.list(user)).map((v) => document(request, v)) };
  });

  app.get(
    '/process-status/:slug',
    { schema: { summary: 'One process', tags, params: SlugParams, response: { 200: ProcessDocumentSchema, 404: ErrorBody } } },
    async (request) => document(request, await processes.get(await userFor(request, false), request.params.slug)),
  );

  app.post(
    '/delete-process/:slug',
    {
      schema: {
        summary: 'End the process and its children, and forget it',
        tags,
        params: SlugParams,
        body: DeleteProcessSchema,
        response: { 404: ErrorBody },
      },
      // "For the moment, this document is always empty": an absent body is the empty one.
      preValidation: async (request) => {
        request.body ??= {};
      },
    },
    async (request) => {
      await processes.remove(await userFor(request, true), request.params.slug);
      return {};
    },
  );

  const open = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const end of open) end();
  });

  app.get(
    '/attach-console/:slug',
    {
      websocket: true,
      schema: { summary: 'WebSocket: one text frame per output line (stdout and stderr), live; frames in go to stdin', tags, params: SlugParams },
      // Checked before the handshake: an unknown process is a plain 404.
      preValidation: async (request) => {
        await processes.get(await userFor(request, true), (request.params as { slug: string }).slug);
      },
    },
    async (socket: WebSocket, request) => {
      const user = await userFor(request, true);
      const { instance } = await processes.get(user, request.params.slug);
      const { log } = await corral.instances.service.output(user, instance.id);
      const forward = forwardBounded(corkedSink(socket), clientCap, (e) => e.line);
      const unsubscribe = log.subscribe((e) => {
        if (e.stream !== 'corral') forward(e);
      });
      const unwatch = corral.instances.service.subscribe(user, (e) => {
        if (e.id === instance.id && e.type === 'deleted') socket.close(1000, 'process deleted');
      });
      const end = () => socket.close(1001, 'server shutting down');
      open.add(end);
      socket.on('message', (data: RawData, isBinary: boolean) => {
        const buf = asBuffer(data);
        corral.instances.service.writeStdin(instance.id, isBinary ? buf : buf.toString('utf8'));
      });
      socket.on('close', () => {
        open.delete(end);
        unsubscribe();
        unwatch();
      });
    },
  );
};
