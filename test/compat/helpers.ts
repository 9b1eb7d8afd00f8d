/**
 * Helpers of the compat tests: a corral with adapters on, Procfile archives served from
 * 127.0.0.1, and the old clients' ways of talking (undici requests with whatever content
 * type they sent, `ws` WebSockets).
 */
import { request } from 'undici';
import WebSocket from 'ws';
import { loadConfig } from '../../src/core/config.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { tarBytes } from '../sources/helpers/archives.js';

/**
 * The config of a corral with the given compat adapters on their own ports (0: any) plus
 * `compatExtra` (other `compat.*` keys), downloads from loopback allowed, quick restarts.
 */
export function compatConfig(
  adapters: Record<string, Record<string, unknown>>,
  compatExtra: Record<string, unknown> = {},
  config: Record<string, unknown> = {},
): Record<string, unknown> {
  const withPorts = Object.fromEntries(Object.entries(adapters).map(([name, c]) => [name, { enabled: true, port: 0, ...c }]));
  return {
    sources: { allowPrivate: ['127.0.0.0/8'] },
    instances: { restart: { initialDelayMs: 100, maxDelayMs: 1000 } },
    compat: { ...withPorts, ...compatExtra },
    ...config,
  };
}

export function startCompatServer(...args: Parameters<typeof compatConfig>): Promise<TestServer> {
  return startTestServer(compatConfig(...args));
}

/** Starts corral again on a kept data dir (startTestServer would make its admin token twice). */
export function restartServer(config: Record<string, unknown>): Promise<RunningServer> {
  return startServer(loadConfig({ env: {}, flags: { host: '127.0.0.1', port: 0, logLevel: 'silent', ...config } }));
}

/** A gzipped tar of a Procfile app: `files` by path, under a top-level directory like real releases. */
export function procfileApp(files: Record<string, string>): Buffer {
  return tarBytes(
    [{ path: 'app/', type: 'Directory' }, ...Object.entries(files).map(([p, body]) => ({ path: `app/${p}`, body }))],
    { gzip: true },
  );
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
  text: string;
}

/** One HTTP request as the old clients made it: the body string as is, only the headers given. */
export async function oldClient(method: string, url: string, opts: { body?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  const res = await request(url, { method: method as 'GET', headers: opts.headers ?? {}, body: opts.body });
  const text = await res.body.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON */
  }
  return { status: res.statusCode, headers: res.headers, body, text };
}

/** Polls `fetchOne` until `pred` holds; throws with the last value after `timeoutMs`. */
export async function eventually<T>(fetchOne: () => Promise<T>, pred: (v: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < until) {
    last = await fetchOne();
    if (pred(last)) return last;
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`timed out; last: ${JSON.stringify(last)}`);
}

export interface FrameLog {
  socket: WebSocket;
  frames: { text: string; binary: boolean }[];
  /** Waits until some frame satisfies `pred`. */
  until(pred: (text: string) => boolean, timeoutMs?: number): Promise<string>;
  close(): Promise<void>;
}

/** Opens a WebSocket and records its frames; rejects with the HTTP status when the handshake is refused. */
export function openWebSocket(url: string, headers: Record<string, string> = {}): Promise<FrameLog> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    const frames: FrameLog['frames'] = [];
    const waiters = new Set<() => void>();
    socket.on('message', (data, binary) => {
      frames.push({ text: Buffer.from(data as Buffer).toString('utf8'), binary });
      for (const w of waiters) w();
    });
    socket.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`handshake refused: ${res.statusCode}`), { status: res.statusCode })));
    socket.once('error', reject);
    socket.once('open', () =>
      resolve({
        socket,
        frames,
        until(pred, timeoutMs = 20_000) {
          return new Promise((ok, fail) => {
            const check = () => {
              const hit = frames.find((f) => pred(f.text));
              if (!hit) return;
              clearTimeout(timer);
              waiters.delete(check);
              ok(hit.text);
            };
            const timer = setTimeout(() => {
              waiters.delete(check);
              fail(new Error(`no matching frame; got ${JSON.stringify(frames.map((f) => f.text))}`));
            }, timeoutMs);
            waiters.add(check);
            check();
          });
        },
        close: () =>
          new Promise<void>((done) => {
            if (socket.readyState === WebSocket.CLOSED) return done();
            socket.once('close', () => done());
            socket.close();
          }),
      }),
    );
  });
}
