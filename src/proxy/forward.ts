/**
 * Forwards one HTTP request upstream over a pooled keep-alive connection (one bounded
 * undici Pool per instance port) and streams both bodies. Maps upstream failures to the
 * proxy's answers: no response headers in time → 504, refused, reset or dropped → 502.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Pool } from 'undici';
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

/** Resolves when the response is done; rejects with a ForwardFailure before headers are sent. */
export function forward(
  pool: Pool,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  headers: string[],
  tls: boolean,
): Promise<void> {
  const hasBody = req.headers['content-length'] !== undefined ? req.headers['content-length'] !== '0' : req.headers['transfer-encoding'] !== undefined;
  const abort = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) abort.abort();
  };
  res.once('close', onClose);
  return pool
    .stream(
      {
        path,
        method: req.method as 'GET',
        headers,
        body: hasBody ? req : null,
        signal: abort.signal,
      },
      ({ statusCode, headers: upHeaders }) => {
        res.writeHead(statusCode, downstreamHeaders(upHeaders, tls));
        return res;
      },
    )
    .then(
      () => undefined,
      (e: { code?: string; name?: string }) => {
        if (abort.signal.aborted) return; // the client went away
        if (res.headersSent) {
          res.destroy();
          return;
        }
        throw (e.code === 'UND_ERR_HEADERS_TIMEOUT' ? 'timeout' : 'unreachable') satisfies ForwardFailure;
      },
    )
    .finally(() => res.off('close', onClose));
}
