/**
 * WebSocket (and any other HTTP Upgrade) forwarding: after the proxy has authorised the
 * upgrade, the request head is replayed on a fresh upstream connection and the two sockets
 * are piped together, so frames pass untouched. Every open tunnel is registered under the
 * credential that opened it, so a logout or a revoked token closes it.
 */
import type { IncomingMessage } from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { cacheKey, type Credential } from './identity.js';
import { rejectUpgrade } from './pages.js';

export interface Tunnel {
  client: Duplex;
  upstream: net.Socket;
}

export function openTunnel(
  req: IncomingMessage,
  client: Duplex,
  head: Buffer,
  target: {
    host: string;
    port: number;
    socketPath?: string;
    path: string;
    headers: string[];
    connectTimeoutMs: number;
    /** After connecting, how long the upstream may take to answer the handshake (504 past it). */
    answerTimeoutMs?: number;
  },
  onTraffic: () => void,
): Tunnel {
  const upstream = net.connect(target.socketPath ? { path: target.socketPath } : { host: target.host, port: target.port });
  upstream.setNoDelay(true);
  let timer = setTimeout(() => upstream.destroy(new Error('connect timeout')), target.connectTimeoutMs);
  /** Whether the upstream said anything yet: until it has, the client is owed an HTTP answer. */
  let answered = false;
  upstream.once('data', () => {
    answered = true;
  });
  let lines = `${req.method} ${target.path} HTTP/1.1\r\n`;
  for (let i = 0; i < target.headers.length; i += 2) lines += `${target.headers[i]}: ${target.headers[i + 1]}\r\n`;
  lines += '\r\n';
  upstream.once('connect', () => {
    clearTimeout(timer);
    // A stopped process still has its connections accepted by the kernel: without an answer
    // deadline the client would wait for it forever.
    if (target.answerTimeoutMs !== undefined) {
      timer = setTimeout(() => {
        if (answered || client.destroyed) return;
        rejectUpgrade(client, 504, 'Gateway Timeout');
        upstream.destroy();
      }, target.answerTimeoutMs);
      upstream.once('data', () => clearTimeout(timer));
    }
    upstream.write(lines);
    if (head.length) upstream.write(head);
    upstream.pipe(client);
    client.pipe(upstream);
  });
  upstream.on('data', onTraffic);
  client.on('data', onTraffic);
  const end = () => {
    clearTimeout(timer);
    // Refused, or accepted and closed without a word (a crashed app, a relay out of
    // descriptors): the client gets a 502 rather than a socket closed on it unexplained.
    if (!answered && !client.destroyed) rejectUpgrade(client, 502, 'Bad Gateway');
    upstream.destroy();
    client.destroy();
  };
  // Sockets from the HTTP server allow half-open connections; a WebSocket has no use for
  // them, so a FIN from either side ends the tunnel (otherwise both fds would linger).
  for (const s of [upstream, client]) {
    s.once('error', end);
    s.once('close', end);
    s.once('end', end);
  }
  return { client, upstream };
}

/** Open tunnels grouped by the credential that opened them. */
export class TunnelRegistry {
  private readonly byCredential = new Map<string, { credential: Credential; tunnels: Set<Tunnel> }>();

  add(credential: Credential, t: Tunnel): void {
    const key = cacheKey(credential);
    let entry = this.byCredential.get(key);
    if (!entry) this.byCredential.set(key, (entry = { credential, tunnels: new Set() }));
    const { tunnels } = entry;
    tunnels.add(t);
    t.client.once('close', () => {
      tunnels.delete(t);
      if (!tunnels.size && this.byCredential.get(key)?.tunnels === tunnels) this.byCredential.delete(key);
    });
  }

  credentials(): Credential[] {
    return [...this.byCredential.values()].map((e) => e.credential);
  }

  closeAll(credential: Credential): void {
    const key = cacheKey(credential);
    for (const t of this.byCredential.get(key)?.tunnels ?? []) {
      t.upstream.destroy();
      t.client.destroy();
    }
    this.byCredential.delete(key);
  }

  get size(): number {
    let n = 0;
    for (const e of this.byCredential.values()) n += e.tunnels.size;
    return n;
  }

  closeEverything(): void {
    for (const c of this.credentials()) this.closeAll(c);
  }
}
