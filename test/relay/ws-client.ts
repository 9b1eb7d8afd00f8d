/**
 * A plain `ws` client for relay tests: opens a socket (or rejects with the HTTP status of a
 * refused handshake), queues what arrives, and waits for the next frame or the close.
 */
import http from 'node:http';
import WebSocket from 'ws';

export interface Received {
  data: Buffer;
  binary: boolean;
  text: string;
}

export interface Client {
  ws: WebSocket;
  /** The next frame (waits up to `timeoutMs`). */
  next(timeoutMs?: number): Promise<Received>;
  /** The next frame parsed as JSON. */
  json(timeoutMs?: number): Promise<any>;
  /** Resolves with the close code and reason. */
  closed: Promise<{ code: number; reason: string }>;
  /** Frames received and not yet taken by next(). */
  pending: Received[];
}

export function connect(url: string, headers: Record<string, string> = {}): Promise<Client> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    const pending: Received[] = [];
    const waiters: ((r: Received) => void)[] = [];
    ws.on('message', (data: Buffer, binary: boolean) => {
      const r = { data, binary, text: data.toString('utf8') };
      const w = waiters.shift();
      if (w) w(r);
      else pending.push(r);
    });
    const closed = new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
    const next = (timeoutMs = 10_000) =>
      new Promise<Received>((res, rej) => {
        const queued = pending.shift();
        if (queued) return res(queued);
        const timer = setTimeout(() => rej(new Error('no frame arrived in time')), timeoutMs);
        waiters.push((r) => {
          clearTimeout(timer);
          res(r);
        });
      });
    ws.once('open', () =>
      resolve({ ws, next, json: async (t) => JSON.parse((await next(t)).text), closed, pending }),
    );
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => reject(Object.assign(new Error(`status ${res.statusCode}: ${body}`), { status: res.statusCode, body })));
    });
    ws.once('error', reject);
  });
}

/** The HTTP status a refused handshake got. */
export async function refusedWith(url: string, headers: Record<string, string> = {}): Promise<number> {
  try {
    const c = await connect(url, headers);
    c.ws.close();
    return 101;
  } catch (e) {
    return (e as { status?: number }).status ?? -1;
  }
}

/** Sends and waits until the frame has been written. */
export function send(c: Client, data: string | Buffer): Promise<void> {
  return new Promise((resolve, reject) => c.ws.send(data, { binary: Buffer.isBuffer(data) }, (e) => (e ? reject(e) : resolve())));
}

/**
 * A WebSocket handshake the server refuses, sent the way a pooling client (aiohttp) sends it:
 * over a keep-alive agent, then an ordinary GET of `followUp` through the same agent. Returns
 * the refusal's status and `Connection` header and the follow-up's status (a reused socket
 * that the server closed would fail it).
 */
export async function refusedHandshake(
  url: string,
  followUp: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; connection: string | undefined; followUpStatus: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const get = (u: string, h: Record<string, string>) =>
    new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.get(u.replace(/^ws/, 'http'), { agent, headers: h }, (res) => {
        res.resume();
        res.once('end', () => resolve(res));
      });
      req.once('upgrade', (res, socket) => {
        socket.destroy();
        resolve(res);
      });
      req.once('error', reject);
    });
  try {
    const refused = await get(url, {
      ...headers,
      connection: 'Upgrade',
      upgrade: 'websocket',
      'sec-websocket-version': '13',
      'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
    });
    const next = await get(followUp, {});
    return { status: refused.statusCode ?? -1, connection: refused.headers.connection, followUpStatus: next.statusCode ?? -1 };
  } finally {
    agent.destroy();
  }
}
