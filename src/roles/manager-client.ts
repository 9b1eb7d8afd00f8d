/**
 * The proxy role's line to its manager: one pooled connection set to the manager's
 * address (`http://host:port` or `unix:/path/to/socket`), the internal secret on every
 * internal call, and the proxy's instance targets (lookup, start, stop, change notices)
 * served by the manager's internal API.
 */
import type { Logger } from 'pino';
import { Pool } from 'undici';
import type { ProxyTarget, ProxyTargets } from '../proxy/targets.js';
import { INTERNAL_PREFIX } from './internal-api.js';
import { INTERNAL_HEADER } from './internal-secret.js';

export interface ManagerAddress {
  host: string;
  port: number;
  /** Set for `unix:` addresses. */
  socketPath?: string;
}

export function parseManagerUrl(url: string): ManagerAddress {
  if (url.startsWith('unix:')) return { host: 'localhost', port: 80, socketPath: url.slice('unix:'.length) };
  const u = new URL(url);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 80) };
}

const RECONNECT_MS = 1000;

export class ManagerClient {
  readonly pool: Pool;
  private closed = false;

  constructor(
    readonly address: ManagerAddress,
    private readonly secret: string | undefined,
    private readonly opts: { connections: number; connectTimeoutMs: number; answerTimeoutMs: number },
  ) {
    const origin = address.socketPath ? 'http://localhost' : `http://${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`;
    this.pool = new Pool(origin, {
      ...(address.socketPath && { socketPath: address.socketPath }),
      connections: opts.connections,
      connectTimeout: opts.connectTimeoutMs,
      // A stopped or partitioned manager still accepts connections (the kernel does): without
      // an answer deadline every request would wait for it. Streams (logs, events) send their
      // headers at once, so only their bodies may go quiet.
      headersTimeout: opts.answerTimeoutMs,
      bodyTimeout: 0,
      keepAliveTimeout: 10_000,
    });
  }

  /** Headers every internal call carries. */
  private internalHeaders(json: boolean): Record<string, string> {
    return { ...(this.secret && { [INTERNAL_HEADER]: this.secret }), ...(json && { 'content-type': 'application/json' }) };
  }

  async call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    const res = await this.pool.request({
      method,
      path: `${INTERNAL_PREFIX}${path}`,
      headers: this.internalHeaders(body !== undefined),
      body: body === undefined ? undefined : JSON.stringify(body),
      bodyTimeout: this.opts.answerTimeoutMs,
    });
    const text = await res.body.text();
    return { status: res.statusCode, body: text ? (JSON.parse(text) as unknown) : undefined };
  }

  /** Calls `fn` for every change notice, and after every (re)connection; retries until closed. */
  async followChanges(fn: () => void, log: Logger): Promise<void> {
    while (!this.closed) {
      try {
        const res = await this.pool.request({ method: 'GET', path: `${INTERNAL_PREFIX}/changes`, headers: this.internalHeaders(false) });
        if (res.statusCode !== 200) throw new Error(`manager answered ${res.statusCode}`);
        fn(); // whatever changed while we were not listening
        for await (const chunk of res.body) if (String(chunk).trim()) fn();
      } catch (e) {
        if (!this.closed) log.warn({ err: e }, 'lost the change stream from the manager; reconnecting');
      }
      if (!this.closed) await new Promise((r) => setTimeout(r, RECONNECT_MS).unref());
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.pool.destroy().catch(() => undefined);
  }
}

const fail = (what: string, r: { status: number; body: unknown }) =>
  new Error(`manager: ${what} answered ${r.status} ${JSON.stringify(r.body)}`);

/** Routes kept for when the manager does not answer; the oldest go first past this many. */
const KNOWN_ROUTES = 10_000;

/**
 * The proxy's targets, looked up on the manager. The last answer for each instance is kept:
 * when the manager fails or does not answer in time, requests go on to where the instance
 * was (it keeps running without its manager), instead of waiting or failing with it.
 */
export function managerTargets(client: ManagerClient, log: Logger): ProxyTargets {
  const action = (name: 'start' | 'stop') => async (t: Pick<ProxyTarget, 'instanceId' | 'ownerId'>) => {
    const r = await client.call('POST', `/instances/${encodeURIComponent(t.instanceId)}/${name}`, { ownerId: t.ownerId });
    if (r.status !== 204) throw fail(name, r);
  };
  const known = new Map<string, ProxyTarget | undefined>();
  const remember = (key: string, t: ProxyTarget | undefined) => {
    known.delete(key);
    known.set(key, t);
    if (known.size > KNOWN_ROUTES) known.delete(known.keys().next().value!);
  };
  return {
    async resolve(owner, instance) {
      const key = `${owner}/${instance}`;
      let r: { status: number; body: unknown };
      try {
        r = await client.call('GET', `/targets/${encodeURIComponent(owner)}/${encodeURIComponent(instance)}`);
      } catch (e) {
        if (!known.has(key)) throw e;
        log.warn({ err: e, instance: key }, 'the manager did not answer a route lookup; using the last known route');
        return known.get(key);
      }
      if (r.status === 404 || r.status === 400) {
        remember(key, undefined);
        return undefined;
      }
      if (r.status !== 200) throw fail('lookup', r);
      remember(key, r.body as ProxyTarget);
      return r.body as ProxyTarget;
    },
    start: action('start'),
    stop: action('stop'),
    onChange(fn) {
      void client.followChanges(fn, log);
    },
  };
}
