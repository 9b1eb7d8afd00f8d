/**
 * A small HTTP server on a loopback address serving fixed routes to download from, counting
 * the connections it accepts (to prove a refused download never connected).
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';

export interface Route {
  status?: number;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** Send the headers, then never the body. */
  hang?: boolean;
  /** Close the connection after answering (no keep-alive). */
  close?: boolean;
}

export interface FileServer {
  url: string;
  port: number;
  connections: number;
  requests: string[];
  routes: Map<string, Route>;
  close(): Promise<void>;
}

/** Serves http, or https with `tls` (a PEM key and certificate). */
export async function startFileServer(
  host = '127.0.0.1',
  routes: Record<string, Route> = {},
  tls?: { key: string; cert: string },
): Promise<FileServer> {
  const state: FileServer = {
    url: '',
    port: 0,
    connections: 0,
    requests: [],
    routes: new Map(Object.entries(routes)),
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
  const handler: http.RequestListener = (req, res) => {
    state.requests.push(req.url ?? '');
    const route = state.routes.get(req.url ?? '');
    if (!route) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    const headers = { ...route.headers, ...(route.close && { connection: 'close' }) };
    if (route.hang) {
      res.writeHead(route.status ?? 200, headers);
      res.flushHeaders();
      return;
    }
    res.writeHead(route.status ?? 200, headers).end(route.body ?? '');
  };
  const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
  server.on('connection', () => state.connections++);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  state.port = (server.address() as AddressInfo).port;
  state.url = `${tls ? 'https' : 'http'}://${host}:${state.port}`;
  return state;
}
