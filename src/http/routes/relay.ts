/**
 * The native relay: `WS /api/v1/relay/{channel}` (see src/core/relay). One host per channel
 * (`?role=host`, hears `peer-connected` and `peer-disconnected` events as JSON), any number of
 * typed peers (`?type=T`, the default role) and, per peer, the host's side of the pairing
 * (`?role=link&peer=ID`). Frames pass between a peer and its link as they came, text or binary.
 * A channel belongs to the user whose host first claimed it: other users' hosts get 403.
 * Refusals (403 not yours, 409 a host is connected, 404 no such peer, 429 full) come before
 * the handshake.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { RawData, WebSocket } from 'ws';
import type { Corral } from '../../core/corral.js';
import { errors } from '../../core/errors.js';
import { CLOSE, type EventFormat, type RelayEnd, type RelaySession } from '../../core/relay/index.js';
import { toCorralError } from '../errors.js';
import { requirePrincipal, requireScope } from '../auth.js';

/** A WebSocket as the relay sees it. */
function wsEnd(socket: WebSocket): RelayEnd {
  return {
    send: (frame, sent) => socket.send(frame.data, { binary: frame.binary }, () => sent()),
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    close: (code, reason) => socket.close(code, reason),
  };
}

/** A `ws` message as one Buffer, whatever shape `ws` delivered it in. */
export const asBuffer = (data: RawData): Buffer =>
  Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);

/**
 * Opens a relay session on an accepted WebSocket. A refusal that was checked before the
 * handshake can still happen in a race (the peer left meanwhile): the socket is then closed
 * with 4004, 4009 or 1013 and the reason.
 */
export function relaySocket(socket: WebSocket, open: (end: RelayEnd) => RelaySession): void {
  let session: RelaySession;
  try {
    session = open(wsEnd(socket));
  } catch (e) {
    const err = toCorralError(e);
    const code = err.status === 404 ? CLOSE.notFound : err.status === 409 ? CLOSE.conflict : 1013;
    socket.close(code, err.message.slice(0, 120));
    return;
  }
  socket.on('message', (data: RawData, isBinary: boolean) => session.received({ data: asBuffer(data), binary: isBinary }));
  socket.on('close', () => session.closed());
  socket.on('error', () => socket.terminate());
}

/** The native spelling of the relay's events. */
const NATIVE_EVENTS: EventFormat = {
  host: (e) => JSON.stringify(e.kind === 'peer-connected' ? { event: e.kind, peer: e.peer, type: e.type } : { event: e.kind, peer: e.peer }),
  peer: (e) => JSON.stringify({ event: e.kind }),
};

/** Native channels and the golem-herder adapter's never share a key. */
const channelKey = (name: string) => `api/${name}`;

const Params = Type.Object({
  channel: Type.String({ pattern: '^[A-Za-z0-9_.-]{1,128}$', description: 'any name; the first host claims it for its user' }),
});
const Query = Type.Object(
  {
    role: Type.Union([Type.Literal('peer'), Type.Literal('host'), Type.Literal('link')], { default: 'peer' }),
    type: Type.Optional(Type.String({ pattern: '^[\\x21-\\x7e]{1,64}$', description: 'a peer’s type, told to the host' })),
    peer: Type.Optional(Type.String({ format: 'uuid', description: 'role=link: the peer to pair with' })),
    token: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);
type QueryT = { role: 'peer' | 'host' | 'link'; type?: string; peer?: string };

function checkQuery(q: QueryT): void {
  if (q.role === 'link' && !q.peer) throw errors.validation('querystring.peer: role=link needs the peer to pair with');
  if (q.role !== 'link' && q.peer) throw errors.validation('querystring.peer: only for role=link');
  if (q.role !== 'peer' && q.type) throw errors.validation('querystring.type: only for role=peer');
}

export const relayRoutes: FastifyPluginAsyncTypebox<{ corral: Corral }> = async (app, { corral }) => {
  const relay = corral.relay;

  app.get(
    '/relay/:channel',
    {
      websocket: true,
      schema: {
        summary: 'WebSocket relay: role=host (events), role=peer&type=T, or role=link&peer=ID (the host’s side of one peer)',
        tags: ['relay'],
        params: Params,
        querystring: Query,
      },
      // Everything that can be refused is refused before the handshake, with a plain status
      // (after validation: preHandler runs before @fastify/websocket upgrades).
      preHandler: async (request) => {
        const q = request.query as QueryT;
        const key = channelKey((request.params as { channel: string }).channel);
        checkQuery(q);
        if (q.role === 'peer') {
          requirePrincipal(request);
          relay.checkPeer(key);
          return;
        }
        const { user } = requireScope(request, 'instances:write');
        if (q.role === 'host') await relay.claimHost(key, user.id);
        else relay.checkLink(key, user.id, q.peer!);
      },
    },
    (socket: WebSocket, request) => {
      const q = request.query;
      const key = channelKey(request.params.channel);
      const owner = request.principal!.user.id;
      relaySocket(socket, (end) => {
        if (q.role === 'host') return relay.openHost(key, owner, end, NATIVE_EVENTS);
        if (q.role === 'link') return relay.openLink(key, owner, q.peer!, end);
        return relay.openPeer(key, q.type ?? '', end, NATIVE_EVENTS);
      });
    },
  );
};
