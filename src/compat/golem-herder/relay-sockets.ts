/**
 * The ad-hoc minion relay on corral's relay (src/core/relay), one channel per document id:
 * the golem's control socket is the host, `connect-to` is the host's link for one minion,
 * and each ad-hoc minion is a peer whose `type` the golem hears. Only the spelling of the
 * events is golem-herder's.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import type { EventFormat } from '../../core/relay/index.js';
import { requirePrincipal } from '../../http/auth.js';
import { relaySocket } from '../../http/routes/relay.js';
import type { CompatPluginOptions } from '../index.js';
import { relayOwner } from './actor.js';
import { DocumentId, TokenQuery, tokenParam } from './schemas.js';

export const GOLEM_EVENTS: EventFormat = {
  host: (e) =>
    JSON.stringify(e.kind === 'peer-connected' ? { Event: 'minion-connected', ID: e.peer, Type: e.type } : { Event: 'minion-disconnected', ID: e.peer }),
  peer: (e) => JSON.stringify({ Event: e.kind === 'host-connected' ? 'golem-connected' : 'golem-disconnected' }),
};

/** Channels of golem-herder documents never meet the native API's (`api/…`). */
export const channelOf = (id: string) => `golem-herder/${id}`;

export const relaySocketRoutes: FastifyPluginAsyncTypebox<CompatPluginOptions<'golemHerder'>> = async (app, { corral, settings }) => {
  const relay = corral.relay;
  const tags = ['golem-herder'];
  /** Owners are worked out before the handshake and kept for the handler. */
  const owners = new WeakMap<FastifyRequest, string | null>();

  app.get(
    '/golem/v1/connect/:id',
    {
      websocket: true,
      schema: {
        summary: "golem-herder: the golem's control socket (minion-connected / minion-disconnected events)",
        tags,
        params: Type.Object({ id: DocumentId }),
        querystring: TokenQuery,
      },
      preHandler: async (request) => {
        owners.set(request, await relayOwner(corral, request, settings));
        // The document's channel belongs to the user whose golem first connected (docs/compat.md).
        await relay.claimHost(channelOf((request.params as { id: string }).id), owners.get(request) ?? null);
      },
    },
    (socket: WebSocket, request) => {
      const owner = owners.get(request) ?? null;
      relaySocket(socket, (end) => relay.openHost(channelOf(request.params.id), owner, end, GOLEM_EVENTS));
    },
  );

  app.get(
    '/golem/v1/connect-to/:id/:minion',
    {
      websocket: true,
      schema: {
        summary: "golem-herder: the golem's side of one minion; frames relayed both ways",
        tags,
        // Any id the old herder would have looked up: one it never issued is 404 there, not 400.
        params: Type.Object({ id: DocumentId, minion: Type.String({ minLength: 1, maxLength: 128 }) }),
        querystring: TokenQuery,
      },
      preHandler: async (request) => {
        const { id, minion } = request.params as { id: string; minion: string };
        const owner = await relayOwner(corral, request, settings);
        owners.set(request, owner);
        relay.checkLink(channelOf(id), owner, minion);
      },
    },
    (socket: WebSocket, request) => {
      const owner = owners.get(request) ?? null;
      relaySocket(socket, (end) => relay.openLink(channelOf(request.params.id), owner, request.params.minion, end));
    },
  );

  app.get(
    '/minion/v1/connect/:id',
    {
      websocket: true,
      schema: {
        summary: 'golem-herder: an ad-hoc minion; paired with the golem of document {id}',
        tags,
        params: Type.Object({ id: DocumentId }),
        querystring: Type.Object(
          { type: Type.Optional(Type.String({ maxLength: 256, pattern: '^[^\\x00-\\x1f\\x7f]*$' })), ...tokenParam },
          { additionalProperties: false },
        ),
      },
      preHandler: async (request) => {
        // A minion may be anyone signed in (with auth off, anyone at all).
        if (settings.auth) requirePrincipal(request);
        relay.checkPeer(channelOf((request.params as { id: string }).id));
      },
    },
    (socket: WebSocket, request) => {
      relaySocket(socket, (end) => relay.openPeer(channelOf(request.params.id), request.query.type ?? '', end, GOLEM_EVENTS));
    },
  );
};
