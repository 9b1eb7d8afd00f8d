/**
 * The proxy role serves no API itself: requests for `/api/…` (and WebSocket upgrades, for
 * attach, logs and events) are passed to the manager as they are — cookies and tokens
 * included, since the manager authenticates them against the shared database — streamed
 * both ways over the manager client's pool. Sits on the raw server like the proxy, and
 * behind it, so instance routes keep precedence.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { errors, type CorralError } from '../core/errors.js';
import { forward } from '../proxy/forward.js';
import { HOP_BY_HOP } from '../proxy/headers.js';
import { rejectUpgrade } from '../proxy/pages.js';
import { openTunnel, type Tunnel } from '../proxy/websocket.js';
import { INTERNAL_HEADER } from './internal-secret.js';
import type { ManagerClient } from './manager-client.js';

const isApi = (url: string | undefined) => !!url && (url.startsWith('/api/') || url === '/api');

/** Headers for the manager: the client's, minus hop-by-hop ones and anything claiming a forwarding identity. */
function managerHeaders(req: IncomingMessage, tls: boolean, websocket: boolean, secret: string): string[] {
  const out: string[] = [];
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i]!.toLowerCase();
    if (HOP_BY_HOP.has(lower) && !(websocket && (lower === 'connection' || lower === 'upgrade'))) continue;
    if (lower === INTERNAL_HEADER || lower.startsWith('x-forwarded-') || lower === 'forwarded') continue;
    out.push(raw[i]!, raw[i + 1]!);
  }
  // The secret tells the manager these forwarding headers come from a proxy it trusts.
  out.push('x-forwarded-for', req.socket.remoteAddress ?? '', 'x-forwarded-proto', tls ? 'https' : 'http', INTERNAL_HEADER, secret);
  return out;
}

function sendError(res: ServerResponse, e: CorralError): void {
  if (res.headersSent) return void res.destroy();
  res.writeHead(e.status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify({ error: { code: e.code, message: e.message } }));
}

export class ApiForwarder {
  private readonly tunnels = new Set<Tunnel>();

  constructor(
    private readonly client: ManagerClient,
    private readonly opts: { secret: string; tls: boolean; connectTimeoutMs: number; answerTimeoutMs: number; log: Logger },
  ) {}

  /** Takes `/api/…` requests off `server` before fastify sees them. */
  intercept(server: Server): void {
    const emit = server.emit.bind(server) as (event: string, ...args: unknown[]) => boolean;
    server.emit = ((event: string, ...args: unknown[]) => {
      if ((event === 'request' || event === 'upgrade') && isApi((args[0] as IncomingMessage).url)) {
        if (event === 'request') this.request(args[0] as IncomingMessage, args[1] as ServerResponse);
        else this.upgrade(args[0] as IncomingMessage, args[1] as Duplex, args[2] as Buffer);
        return true;
      }
      return emit(event, ...args);
    }) as typeof server.emit;
  }

  private request(req: IncomingMessage, res: ServerResponse): void {
    forward(this.client.pool, req, res, req.url!, managerHeaders(req, this.opts.tls, false, this.opts.secret), this.opts.tls).catch((failure: unknown) => {
      this.opts.log.warn({ failure, url: req.url }, 'the manager did not answer');
      if (failure === 'timeout') sendError(res, errors.managerTimeout('the manager did not answer in time'));
      else sendError(res, errors.managerUnavailable('the manager cannot be reached'));
    });
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const a = this.client.address;
    if (!req.url) return rejectUpgrade(socket, 400, 'Bad Request');
    const t = openTunnel(
      req,
      socket,
      head,
      {
        ...a,
        path: req.url,
        headers: managerHeaders(req, this.opts.tls, true, this.opts.secret),
        connectTimeoutMs: this.opts.connectTimeoutMs,
        answerTimeoutMs: this.opts.answerTimeoutMs,
      },
      () => undefined,
    );
    this.tunnels.add(t);
    socket.once('close', () => this.tunnels.delete(t));
  }

  /** Ends every WebSocket passing through (at shutdown). */
  closeEverything(): void {
    for (const t of this.tunnels) {
      t.upstream.destroy();
      t.client.destroy();
    }
    this.tunnels.clear();
  }
}
