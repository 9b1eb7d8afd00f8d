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
 * `client.url` and `client.headers()` are there for WebSocket commands (attach, logs -f).
 */
import { Agent, request, type Dispatcher } from 'undici';
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
  private readonly token: string | undefined;
  private readonly dispatcher: Dispatcher | undefined;

  constructor(opts: ClientOptions) {
    this.url = opts.url.replace(/\/+$/, '');
    this.token = opts.token;
    this.dispatcher = opts.insecure ? new Agent({ connect: { rejectUnauthorized: false } }) : undefined;
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
    return new ApiClient({ url: this.url, token, insecure: this.dispatcher !== undefined });
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
    const target = `${this.url}${/^\/(api\/|healthz|readyz)/.test(path) ? path : `/api/v1${path}`}`;
    let res: Dispatcher.ResponseData;
    try {
      res = await request(target, {
        method: method as Dispatcher.HttpMethod,
        headers: {
          accept: 'application/json',
          ...this.headers(),
          ...(body !== undefined && { 'content-type': 'application/json' }),
          ...opts.headers,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        ...(this.dispatcher && { dispatcher: this.dispatcher }),
      });
    } catch (e) {
      throw networkError(this.url, e as NodeJS.ErrnoException);
    }
    const text = await res.body.text();
    let parsed: unknown = text || undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON: keep the text */
    }
    return { status: res.statusCode, headers: res.headers, body: parsed };
  }
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
