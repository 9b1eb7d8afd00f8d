/**
 * The CLI's one client for corral's HTTP API. Commands get one from `apiAction` (see
 * command.ts) and call it like this:
 *
 *   const { users } = await client.get<{ users: User[] }>('/users');
 *   await client.post('/instances', { name, spec });
 *   await client.delete(`/tokens/${id}`);
 *
 * Paths are relative to /api/v1 (an absolute path starting with `/api/` or `/healthz` is
 * used as is). Bodies are sent as JSON; replies are parsed as JSON (204 gives undefined).
 * Any error reply `{"error":{"code","message"}}` becomes `CliError(code, message)`, and so
 * do network and TLS failures, so commands never handle HTTP errors themselves.
 * `client.stream(path)` gives a streaming reply (logs -f); `client.url`, `client.insecure` and
 * `client.headers()` are there for WebSocket commands (attach).
 *
 * Requests go through node:http/node:https, loaded on first use: a CLI call starts in the
 * time of `node` itself plus commander, not plus an HTTP library (docs/benchmarks.md, cli).
 */
import type { IncomingMessage, RequestOptions } from 'node:http';
import { readCredentials } from './credentials.js';
import { CliError } from './output.js';

export interface ClientOptions {
  /** The server's base URL, e.g. https://corral.example:8080 */
  url: string;
  /** A bearer token; absent only for login. */
  token?: string | undefined;
  /** Accept a self-signed or otherwise untrusted TLS certificate (`-k`). */
  insecure?: boolean | undefined;
}

/** Extra per-call options: headers (e.g. a session cookie during login). */
export interface CallOptions {
  headers?: Record<string, string>;
}

export interface RawReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

export class ApiClient {
  readonly url: string;
  /** Whether an untrusted TLS certificate is accepted (`-k`). */
  readonly insecure: boolean;
  private readonly token: string | undefined;

  constructor(opts: ClientOptions) {
    this.url = opts.url.replace(/\/+$/, '');
    this.token = opts.token;
    this.insecure = !!opts.insecure;
  }

  /**
   * A client from the flags (`--url`, `-k`), then CORRAL_URL/CORRAL_TOKEN/CORRAL_INSECURE,
   * then the file `corral login` wrote. Fails with `not_logged_in` when there is no token.
   */
  static async fromCredentials(flags: { url?: string | undefined; insecure?: boolean | undefined } = {}): Promise<ApiClient> {
    const { url, token, insecure } = await readCredentials({ url: flags.url });
    if (!url) throw new CliError('not_logged_in', 'not logged in: run `corral login URL` (or set CORRAL_URL and CORRAL_TOKEN)');
    if (!token) throw new CliError('not_logged_in', `no token for ${url}: run \`corral login ${url}\` (or set CORRAL_TOKEN)`);
    return new ApiClient({ url, token, insecure: flags.insecure || insecure });
  }

  /** A copy of this client that presents another token (for `token inspect TOKEN`). */
  withToken(token: string): ApiClient {
    return new ApiClient({ url: this.url, token, insecure: this.insecure });
  }

  /** Headers that authenticate a request: for WebSocket connections made outside `call`. */
  headers(): Record<string, string> {
    return this.token ? { authorization: `Bearer ${this.token}` } : {};
  }

  get<T>(path: string, opts?: CallOptions): Promise<T> {
    return this.call<T>('GET', path, undefined, opts);
  }
  post<T>(path: string, body?: unknown, opts?: CallOptions): Promise<T> {
    return this.call<T>('POST', path, body, opts);
  }
  put<T>(path: string, body?: unknown, opts?: CallOptions): Promise<T> {
    return this.call<T>('PUT', path, body, opts);
  }
  patch<T>(path: string, body?: unknown, opts?: CallOptions): Promise<T> {
    return this.call<T>('PATCH', path, body, opts);
  }
  delete<T>(path: string, opts?: CallOptions): Promise<T> {
    return this.call<T>('DELETE', path, undefined, opts);
  }

  /** Sends one request and returns the parsed body; error replies throw `CliError`. */
  async call<T>(method: string, path: string, body?: unknown, opts: CallOptions = {}): Promise<T> {
    const reply = await this.raw(method, path, body, opts);
    if (reply.status >= 400) throw replyError(reply);
    return reply.body as T;
  }

  /** Like `call` but returns status and headers too, and does not throw on error replies. */
  async raw(method: string, path: string, body?: unknown, opts: CallOptions = {}): Promise<RawReply> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = {
      accept: 'application/json',
      ...this.headers(),
      ...(payload !== undefined && { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) }),
      ...opts.headers,
    };
    const res = await this.send(method, path, headers, payload);
    const text = await readText(res);
    let parsed: unknown = text || undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON: keep the text */
    }
    return { status: res.statusCode ?? 0, headers: res.headers, body: parsed };
  }

  /** A GET whose reply is read as it comes (`logs -f`); an error reply throws `CliError`. */
  async stream(path: string): Promise<IncomingMessage> {
    const res = await this.send('GET', path, this.headers(), undefined);
    if ((res.statusCode ?? 0) < 400) return res;
    const text = await readText(res);
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    throw replyError({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
  }

  /** `/instances` → this server's `/api/v1/instances`; `/api/…`, `/healthz`, `/readyz` as they are. */
  target(path: string): string {
    return `${this.url}${/^\/(api\/|healthz|readyz)/.test(path) ? path : `/api/v1${path}`}`;
  }

  private async send(method: string, path: string, headers: Record<string, string>, payload: string | undefined): Promise<IncomingMessage> {
    const target = this.target(path);
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      throw new CliError('bad_url', `"${this.url}" is not a URL: give one like https://corral.example:8080`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new CliError('bad_url', `"${this.url}" is not an http(s) URL`);
    const { request } = url.protocol === 'https:' ? await import('node:https') : await import('node:http');
    const options: RequestOptions & { rejectUnauthorized?: boolean } = {
      method,
      headers,
      ...(url.protocol === 'https:' && this.insecure && { rejectUnauthorized: false }),
    };
    return new Promise((resolve, reject) => {
      const req = request(url, options, resolve);
      req.on('error', (e: NodeJS.ErrnoException) => reject(networkError(this.url, e)));
      req.end(payload);
    });
  }
}

async function readText(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of res) chunks.push(chunk as Buffer);
  } catch (e) {
    throw new CliError('unreachable', `the connection closed before the reply was complete: ${(e as Error).message}`);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The `CliError` for an error reply (`{"error":{"code","message"}}`, or any other body). */
export function replyError(reply: RawReply): CliError {
  const e = (reply.body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  if (e && typeof e.code === 'string' && typeof e.message === 'string') return new CliError(e.code, e.message);
  const text = typeof reply.body === 'string' ? reply.body.slice(0, 200) : JSON.stringify(reply.body ?? '');
  return new CliError(`http_${reply.status}`, `the server answered ${reply.status}: ${text}`);
}

const TLS_UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

function networkError(url: string, e: NodeJS.ErrnoException): CliError {
  const code = e.code ?? (e.cause as NodeJS.ErrnoException | undefined)?.code;
  if (code && TLS_UNTRUSTED.has(code)) {
    return new CliError('tls_untrusted', `the TLS certificate of ${url} is not trusted (${code}); pass -k to accept it`);
  }
  return new CliError('unreachable', `cannot reach ${url}: ${e.message}${code && !e.message.includes(code) ? ` (${code})` : ''}`);
}
