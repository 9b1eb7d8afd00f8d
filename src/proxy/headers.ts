/**
 * Headers on the way up and down. Upstream gets the client's headers minus hop-by-hop
 * ones, minus anything a client could use to claim an identity (`X-Corral-*`,
 * `X-Forwarded-*`, `Forwarded`, `X-Real-IP`), minus corral's own credentials (session
 * cookie, the Authorization header that carried a corral token); then corral adds the
 * forwarding headers, `X-Corral-User` and, when enabled, `X-Corral-Identity`. Clients get the upstream's headers minus
 * hop-by-hop ones, plus the security headers when the app set none, plus a CSP sandbox
 * under path routing (the page then runs in an opaque origin, not the main one).
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { SESSION_COOKIE } from '../core/accounts/index.js';
import { HOST_COOKIE } from './host-login.js';
import type { Credential } from './identity.js';

export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-authorization',
  'proxy-authenticate',
  'expect',
  'http2-settings',
]);
const WEBSOCKET_KEEP = new Set(['connection', 'upgrade']);
const SESSION_PREFIX = `${SESSION_COOKIE}=`;
const CSRF_PREFIX = 'corral_csrf=';
const HOST_PREFIX = `${HOST_COOKIE}=`;
const isCorralCookie = (c: string) => c.startsWith(SESSION_PREFIX) || c.startsWith(CSRF_PREFIX) || c.startsWith(HOST_PREFIX);

/**
 * What a page served by path routing may do: run scripts, forms and pop-ups, but never as
 * the main origin (no allow-same-origin), so it cannot read the API with its viewer's cookie.
 */
export const SANDBOX_CSP = 'sandbox allow-scripts allow-forms allow-popups allow-popups-to-escape-sandbox allow-modals allow-downloads';

const isIdentityHeader = (lower: string) =>
  lower.startsWith('x-forwarded-') || lower.startsWith('x-corral-') || lower === 'forwarded' || lower === 'x-real-ip';

export interface ForwardContext {
  clientIp: string;
  proto: 'http' | 'https';
  host: string;
  prefix: string;
  user: string;
  /** X-Corral-Identity, when assertions are on (identity-assertion.ts). */
  assertion?: string;
  credential: Credential;
  websocket: boolean;
}

/** Flat [name, value, …] list for undici or a raw request head. */
export function upstreamHeaders(req: IncomingMessage, ctx: ForwardContext): string[] {
  const raw = req.rawHeaders;
  const out: string[] = [];
  const connectionListed = listedInConnection(req.headers.connection, ctx.websocket);
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) && !(ctx.websocket && WEBSOCKET_KEEP.has(lower))) continue;
    if (isIdentityHeader(lower) || connectionListed?.has(lower)) continue;
    if (lower === 'authorization' && ctx.credential.from === 'header') continue;
    if (lower === 'cookie') {
      const kept = withoutCorralCookies(raw[i + 1]!);
      if (kept) out.push(name, kept);
      continue;
    }
    out.push(name, raw[i + 1]!);
  }
  out.push(
    'x-forwarded-for', ctx.clientIp,
    'x-forwarded-proto', ctx.proto,
    'x-forwarded-host', ctx.host,
    'x-corral-user', ctx.user,
  );
  if (ctx.prefix) out.push('x-forwarded-prefix', ctx.prefix);
  if (ctx.assertion) out.push('x-corral-identity', ctx.assertion);
  return out;
}

/** Extra headers named in `Connection:` are hop-by-hop too (RFC 9110 §7.6.1). */
function listedInConnection(value: string | undefined, websocket: boolean): Set<string> | undefined {
  if (!value || value.indexOf(',') < 0 && /^(keep-alive|close|upgrade)$/i.test(value.trim())) return undefined;
  const names = value.split(',').map((s) => s.trim().toLowerCase());
  return new Set(websocket ? names.filter((n) => n !== 'upgrade') : names);
}

/** The Cookie header without corral's cookies ('' when nothing is left). */
export function withoutCorralCookies(header: string): string {
  if (!header.includes('corral_')) return header;
  let kept = '';
  for (let i = 0; i < header.length; ) {
    const semi = header.indexOf(';', i);
    const end = semi < 0 ? header.length : semi;
    const c = header.slice(i, end).trim();
    if (c && !isCorralCookie(c)) kept = kept ? `${kept}; ${c}` : c;
    i = end + 1;
  }
  return kept;
}

/** Security headers corral sets on its own pages. */
export function securityHeaders(tls: boolean): Record<string, string> {
  return {
    'x-frame-options': 'SAMEORIGIN',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'same-origin',
    ...(tls && { 'strict-transport-security': 'max-age=31536000; includeSubDomains' }),
  };
}

/** The upstream's response headers as the client gets them. */
export function downstreamHeaders(
  h: IncomingHttpHeaders | Record<string, string | string[] | undefined>,
  tls: boolean,
  sandbox = false,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name in h) {
    const v = h[name];
    if (v === undefined || HOP_BY_HOP.has(name)) continue;
    out[name] = v;
  }
  if (out['x-frame-options'] === undefined) out['x-frame-options'] = 'SAMEORIGIN';
  if (out['x-content-type-options'] === undefined) out['x-content-type-options'] = 'nosniff';
  if (tls && out['strict-transport-security'] === undefined) out['strict-transport-security'] = 'max-age=31536000; includeSubDomains';
  if (sandbox) {
    // Added to the app's own policy, never replacing it: browsers enforce every policy sent.
    const csp = out['content-security-policy'];
    out['content-security-policy'] = csp === undefined ? SANDBOX_CSP : [...(Array.isArray(csp) ? csp : [csp]), SANDBOX_CSP];
  }
  return out;
}
