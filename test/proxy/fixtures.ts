/**
 * Test fixtures for the proxy: real backends on 127.0.0.1 (an echo app that answers with
 * what it received, a WebSocket echo, one that hangs, one that drops the connection), an
 * in-memory ProxyTargets standing in for the instances core, and ways to reach instance
 * hosts (`{instance}--{owner}.corral.test`) that send every byte to 127.0.0.1: a Host
 * header, or a DNS lookup that answers 127.0.0.1 for any name.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, LookupFunction } from 'node:net';
import { Agent, fetch as undiciFetch, type RequestInit as UndiciInit, type Response as UndiciResponse } from 'undici';
import { WebSocketServer } from 'ws';
import type { ProxyTarget, ProxyTargets } from '../../src/proxy/index.js';
import { api, createUser, login, startTestServer, type TestServer } from '../helpers/server.js';

export interface Backend {
  port: number;
  close(): Promise<void>;
}

/** Answers every request with JSON of its method, url, headers and body; echoes WebSocket frames. */
export async function echoBackend(): Promise<Backend> {
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': 'app_cookie=1; Path=/' });
      res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body }));
    });
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => {
    ws.send(`hello ${String(req.headers['x-corral-user'])}`);
    ws.on('message', (m, binary) => ws.send(m, { binary }));
  });
  return listen(server, () => {
    for (const c of wss.clients) c.terminate();
    wss.close();
  });
}

/**
 * Sends the first part of its answer, then waits for `release()` before the rest: a client
 * that sees the first part before releasing proves nothing held it back. `/length` answers
 * with a Content-Length, anything else chunked (like server-sent events).
 */
export async function tricklingBackend(): Promise<Backend & { release(): void }> {
  let waiting: (() => void)[] = [];
  const server = http.createServer((req, res) => {
    res.writeHead(200, req.url === '/length' ? { 'content-length': '12' } : { 'content-type': 'text/event-stream' });
    res.write('first-');
    waiting.push(() => res.end('second'));
  });
  const backend = await listen(server);
  return {
    ...backend,
    release: () => {
      for (const w of waiting) w();
      waiting = [];
    },
  };
}

/** Never answers. */
export async function hangingBackend(): Promise<Backend> {
  return listen(http.createServer(() => undefined));
}

/** Accepts, then drops the connection without a response. */
export async function droppingBackend(): Promise<Backend> {
  return listen(http.createServer((req) => req.socket.destroy()));
}

async function listen(server: http.Server, before?: () => void): Promise<Backend> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      before?.();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

interface FixtureInstance extends ProxyTarget {
  owner: string;
  name: string;
}

/** Instances kept in memory; start/stop flip their state. */
export class FixtureTargets implements ProxyTargets {
  readonly instances = new Map<string, FixtureInstance>();
  readonly stops: string[] = [];
  readonly starts: string[] = [];

  add(i: { owner: string; ownerId: string; name: string; state?: string; ports: { name: string; port: number }[] }): string {
    const instanceId = `inst-${i.owner}-${i.name}`;
    this.instances.set(`${i.owner}/${i.name}`, {
      instanceId,
      ownerId: i.ownerId,
      owner: i.owner,
      name: i.name,
      state: i.state ?? 'running',
      ports: i.ports.map((p) => ({ name: p.name, host: '127.0.0.1', port: p.port })),
    });
    return instanceId;
  }

  async resolve(owner: string, name: string): Promise<ProxyTarget | undefined> {
    const i = this.instances.get(`${owner}/${name}`);
    return i && { ...i, ports: [...i.ports] };
  }

  private byId(id: string) {
    return [...this.instances.values()].find((i) => i.instanceId === id)!;
  }

  async start({ instanceId }: { instanceId: string }): Promise<void> {
    this.starts.push(instanceId);
    this.byId(instanceId).state = 'running';
  }

  async stop({ instanceId }: { instanceId: string }): Promise<void> {
    this.stops.push(instanceId);
    this.byId(instanceId).state = 'stopped';
  }
}

export async function userId(server: TestServer, name: string): Promise<string> {
  const res = await api(server, server.adminToken, 'GET', `/api/v1/users/${name}`);
  if (res.status !== 200) throw new Error(`no user ${name}: ${res.status}`);
  return (res.body as { id: string }).id;
}

/** A raw HTTP(S) request (fetch cannot set Host or send un-normalised paths); https accepts the tests' own certificates. */
export function rawRequest(
  url: string,
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const u = new URL(url);
  const mod = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request({ host: u.hostname, port: u.port, path, method, headers, agent: false, rejectUnauthorized: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Resolves every name to 127.0.0.1, so instance hosts' URLs can be used as they are. */
export const loopbackLookup = ((_host: string, opts: { all?: boolean }, cb: (...a: unknown[]) => void) =>
  opts.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4)) as unknown as LookupFunction;

const loopbackAgent = new Agent({ connect: { lookup: loopbackLookup, rejectUnauthorized: false } });

/** fetch for instance hosts' URLs, connecting to 127.0.0.1 whatever the name. */
export function hostFetch(url: string, init: UndiciInit = {}): Promise<UndiciResponse> {
  return undiciFetch(url, { ...init, dispatcher: loopbackAgent });
}

/** The instance host name of a port of an instance in a proxy world. */
export const hostName = (instance: string, owner: string, port?: string) =>
  `${instance}--${owner}${port ? `--${port}` : ''}.${APPS_DOMAIN}`;

/** The origin of an instance host on `server` (which listens on 127.0.0.1, reached by name through loopbackLookup). */
export const hostOrigin = (server: { url: string }, host: string) => `${new URL(server.url).protocol}//${host}:${new URL(server.url).port}`;

/**
 * Logs a browser holding the main session `mainCookie` in to an instance host through the
 * real handshake (main origin's /host-login, then the host's /_corral/callback) and returns
 * that host's cookie (`corral_host=…`).
 */
export async function hostCookie(server: { url: string }, mainCookie: string, host: string): Promise<string> {
  const label = host.slice(0, host.indexOf('.'));
  const start = await rawRequest(server.url, `/host-login?host=${label}&next=%2F`, { cookie: mainCookie });
  if (start.status !== 302) throw new Error(`host login for ${host} refused: ${start.status} ${start.body}`);
  const to = new URL(start.headers.location!);
  const done = await rawRequest(server.url, to.pathname + to.search, { host: to.host });
  const cookie = (done.headers['set-cookie'] ?? []).find((c) => c.startsWith('corral_host='));
  if (done.status !== 302 || !cookie) throw new Error(`callback on ${host} failed: ${done.status} ${done.body}`);
  return cookie.split(';')[0]!;
}

export const APPS_DOMAIN = 'corral.test';

export interface ProxyWorld {
  server: TestServer;
  targets: FixtureTargets;
  echo: Backend;
  alice: { token: string; cookie: string; id: string };
  bob: { token: string; cookie: string; id: string };
  /** alice's cookie for her instance host `app--alice.corral.test`. */
  aliceApp: string;
  /** GET (or `method`) on an instance host, through 127.0.0.1 with the Host header set. */
  onHost(host: string, path: string, headers?: Record<string, string>, method?: string): ReturnType<typeof rawRequest>;
  close(): Promise<void>;
}

/** A corral with users alice and bob, and alice's instance `app` on an echo backend. */
export async function proxyWorld(proxyConfig: Record<string, unknown> = {}): Promise<ProxyWorld> {
  const server = await startTestServer({
    proxy: { appsDomain: APPS_DOMAIN, upstreamTimeoutSeconds: 1, websocketRecheckSeconds: 0.3, ...proxyConfig },
  });
  const targets = new FixtureTargets();
  server.app.proxy.useTargets(targets);
  const echo = await echoBackend();
  const person = async (name: string) => {
    const token = await createUser(server, name);
    const { cookie } = await login(server.url, name, `${name}-password`);
    return { token, cookie, id: await userId(server, name) };
  };
  const alice = await person('alice');
  const bob = await person('bob');
  targets.add({ owner: 'alice', ownerId: alice.id, name: 'app', ports: [{ name: 'http', port: echo.port }] });
  const aliceApp = await hostCookie(server, alice.cookie, hostName('app', 'alice'));
  return {
    server,
    targets,
    echo,
    alice,
    bob,
    aliceApp,
    onHost: (host, path, headers = {}, method = 'GET') => rawRequest(server.url, path, { host, ...headers }, method),
    async close() {
      await server.stop();
      await echo.close();
    },
  };
}
