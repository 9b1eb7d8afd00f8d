/**
 * Forwards one HTTP request upstream over a pooled keep-alive connection (one bounded
 * undici Pool per instance port) and streams both bodies. Maps upstream failures to the
 * proxy's answers: no response headers in time → 504, refused, reset or dropped → 502.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
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
): Promise<void> {
  const hasBody = req.headers['content-length'] !== undefined ? req.headers['content-length'] !== '0' : req.headers['transfer-encoding'] !== undefined;
  return new Promise((resolve, reject) => {
    let controller: Dispatcher.DispatchController | undefined;
    let clientGone = false;
    const onClose = () => {
      if (res.writableFinished) return;
      clientGone = true;
      controller?.abort(new Error('client went away'));
    };
    res.once('close', onClose);
    const done = () => {
      res.off('close', onClose);
      resolve();
    };
    pool.dispatch(
      { path, method: req.method as Dispatcher.HttpMethod, headers, body: hasBody ? req : null },
      {
        onRequestStart(c) {
          controller = c;
          if (clientGone) c.abort(new Error('client went away'));
        },
        onResponseStart(c, statusCode, upHeaders) {
          res.writeHead(statusCode, downstreamHeaders(upHeaders, tls));
        },
        onResponseData(c, chunk) {
          if (!res.write(chunk)) {
            c.pause();
            res.once('drain', () => c.resume());
          }
        },
        onResponseEnd() {
          res.end();
          done();
        },
        onResponseError(_c, e: Error & { code?: string }) {
          res.off('close', onClose);
          if (clientGone) return resolve();
          if (res.headersSent) {
            res.destroy();
            return resolve();
          }
          reject((e.code === 'UND_ERR_HEADERS_TIMEOUT' ? 'timeout' : 'unreachable') satisfies ForwardFailure);
        },
      },
    );
  });
}
