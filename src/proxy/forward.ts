/**
 * Forwards one HTTP request upstream over a pooled keep-alive connection (one bounded
 * undici Pool per instance port) and streams both bodies. Maps upstream failures to the
 * proxy's answers: no response headers in time → 504, refused, reset or dropped → 502.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { Pool, type Dispatcher } from 'undici';
import { downstreamHeaders } from './headers.js';

export interface PoolLimits {
  connections: number;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
}

const IDLE_POOL_MS = 5 * 60_000;

export class UpstreamPools {
  private readonly pools = new Map<string, { pool: Pool; usedAt: number }>();

  constructor(private readonly limits: PoolLimits) {}

  get(host: string, port: number): Pool {
    const key = `${host}:${port}`;
    let entry = this.pools.get(key);
    if (!entry) {
      const pool = new Pool(`http://${key}`, {
        connections: this.limits.connections,
        connectTimeout: this.limits.connectTimeoutMs,
        headersTimeout: this.limits.headersTimeoutMs,
        bodyTimeout: 0, // long polls and streams are fine; the client decides when to give up
        keepAliveTimeout: 10_000,
        keepAliveMaxTimeout: 60_000,
        pipelining: 1,
      });
      entry = { pool, usedAt: 0 };
      this.pools.set(key, entry);
    }
    entry.usedAt = now;
    return entry.pool;
  }

  /** Closes pools nobody used for a while (instances that stopped or moved). */
  sweep(): void {
    const limit = Date.now() - IDLE_POOL_MS;
    for (const [key, e] of this.pools) {
      if (e.usedAt < limit) {
        this.pools.delete(key);
        void e.pool.close().catch(() => undefined);
      }
    }
  }

  async close(): Promise<void> {
    const all = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(all.map((e) => e.pool.destroy().catch(() => undefined)));
  }
}

// A coarse clock for pool bookkeeping, so the hot path does not call Date.now().
let now = Date.now();
setInterval(() => (now = Date.now()), 1000).unref();

export type ForwardFailure = 'timeout' | 'unreachable';

/**
 * Resolves when the response is done; rejects with a ForwardFailure before headers are sent.
 * Uses undici's dispatch handler directly: no stream wrappers or AbortController per
 * request, and backpressure from the client pauses the upstream read.
 */
export function forward(
  pool: Pool,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  headers: string[],
  tls: boolean,
  sandbox = false,
): Promise<void> {
  const hasBody = req.headers['content-length'] !== undefined ? req.headers['content-length'] !== '0' : req.headers['transfer-encoding'] !== undefined;
  return new Promise((resolve, reject) => {
    const relay = new ResponseRelay(res, tls, sandbox, resolve, reject);
    // Left in place after the response: 'close' comes after 'finish' then, and is ignored.
    res.once('close', () => relay.clientClosed());
    pool.dispatch({ path, method: req.method as Dispatcher.HttpMethod, headers, body: hasBody ? req : null }, relay);
  });
}

/**
 * One upstream response on its way to the client. A class rather than an object literal of
 * callbacks: one allocation per request instead of one closure per callback.
 */
class ResponseRelay implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  private clientGone = false;
  /** Body bytes still to come, when the upstream sent a Content-Length. */
  private remaining = NaN;
  /** The body's last chunk, held until the end that follows at once: head, body and end then go out in one write. */
  private held: Buffer | undefined;

  constructor(
    private readonly res: ServerResponse,
    private readonly tls: boolean,
    private readonly sandbox: boolean,
    private readonly resolve: () => void,
    private readonly reject: (f: ForwardFailure) => void,
  ) {}

  clientClosed(): void {
    if (this.res.writableFinished) return;
    this.clientGone = true;
    this.controller?.abort(new Error('client went away'));
  }

  onRequestStart(c: Dispatcher.DispatchController): void {
    this.controller = c;
    if (this.clientGone) c.abort(new Error('client went away'));
  }

  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    this.res.writeHead(statusCode, downstreamHeaders(headers, this.tls, this.sandbox));
    const length = headers['content-length'];
    if (typeof length === 'string') this.remaining = Number(length);
  }

  onResponseData(c: Dispatcher.DispatchController, chunk: Buffer): void {
    this.remaining -= chunk.length;
    if (this.remaining === 0) {
      this.held = chunk; // the parser reports the end next, in the same pass
      return;
    }
    if (!this.res.write(chunk)) {
      c.pause();
      this.res.once('drain', () => c.resume());
    }
  }

  onResponseEnd(): void {
    const held = this.held;
    this.held = undefined;
    if (held) this.res.end(held);
    else this.res.end();
    this.resolve();
  }

  onResponseError(_c: Dispatcher.DispatchController, e: Error & { code?: string }): void {
    if (this.clientGone) return this.resolve();
    if (this.res.headersSent) {
      this.res.destroy();
      return this.resolve();
    }
    this.reject(e.code === 'UND_ERR_HEADERS_TIMEOUT' ? 'timeout' : 'unreachable');
  }
}
