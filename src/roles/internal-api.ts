/**
 * The manager's internal API, for proxy-role processes only: look an instance up for
 * routing, start or stop it (start on demand, idle culling), and a stream of change
 * notices so proxies drop cached lookups. Callers present the shared secret
 * (`cluster.internalSecret`); without one configured, only callers on the manager's unix
 * socket are let in (the socket's file mode is then the guard).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ServerResponse } from 'node:http';
import { Type } from '@sinclair/typebox';
import type { Corral } from '../core/corral.js';
import { errors } from '../core/errors.js';
import { instanceTargets } from '../proxy/targets.js';
import { INTERNAL_HEADER, secretMatches } from './internal-secret.js';

export const INTERNAL_PREFIX = '/internal/v1';

const Name = Type.String({ pattern: '^[a-z0-9_.-]{1,64}$' });
const TargetParams = Type.Object({ owner: Name, instance: Name }, { additionalProperties: false });
const ActionParams = Type.Object(
  { id: Type.String({ format: 'uuid' }), action: Type.Union([Type.Literal('start'), Type.Literal('stop')]) },
  { additionalProperties: false },
);
const ActionBody = Type.Object({ ownerId: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false });

/** A heartbeat line on the change stream, so a proxy notices a dead connection. */
const KEEPALIVE_MS = 15_000;

export const internalRoutes: FastifyPluginAsyncTypebox<{ corral: Corral }> = async (app, { corral }) => {
  const targets = instanceTargets(corral);
  const secret = corral.config.cluster.internalSecret;
  app.addHook('onRequest', async (request) => {
    const overUnixSocket = request.socket.remoteAddress === undefined;
    const allowed = secret ? secretMatches(request.headers[INTERNAL_HEADER], secret) : overUnixSocket;
    if (!allowed) throw errors.unauthenticated('internal API: missing or wrong internal secret');
  });
  const config = { corralAuth: false, csrf: false };
  // Change streams never end on their own: end them so shutdown does not wait for them.
  const streams = new Set<ServerResponse>();
  app.addHook('preClose', async () => {
    for (const res of streams) res.end();
  });

  app.get('/targets/:owner/:instance', { schema: { hide: true, params: TargetParams }, config }, async (request) => {
    const t = await targets?.resolve(request.params.owner, request.params.instance);
    if (!t) throw errors.instanceNotFound(`${request.params.owner}/${request.params.instance}`);
    return t;
  });

  app.post(
    '/instances/:id/:action',
    { schema: { hide: true, params: ActionParams, body: ActionBody }, config },
    async (request, reply) => {
      if (!targets) throw errors.instanceNotFound(request.params.id);
      const t = { instanceId: request.params.id, ownerId: request.body.ownerId };
      await (request.params.action === 'start' ? targets.start(t) : targets.stop(t));
      return reply.code(204).send();
    },
  );

  /** One line per instance state change (and a blank line now and then), until the caller leaves. */
  app.get('/changes', { schema: { hide: true }, config }, (request, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    res.write('\n');
    streams.add(res);
    const admin = { id: '', name: '', role: 'admin' as const, credits: 0, createdAt: '' };
    const unsubscribe = corral.instances?.service.subscribe(admin, (e) => res.write(`${JSON.stringify({ id: e.id })}\n`));
    const beat = setInterval(() => res.write('\n'), KEEPALIVE_MS);
    const end = () => {
      clearInterval(beat);
      streams.delete(res);
      unsubscribe?.();
    };
    request.raw.once('close', end);
    res.once('close', end);
  });
};
