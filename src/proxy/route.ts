/**
 * Which instance port a request is for: by host (`{instance}--{owner}[--{port}].{appsDomain}`,
 * see origins.ts) or, only with the unsafe `proxy.pathRouting`, by path on the main origin
 * (`/i/{owner}/{instance}[/port/{name}]/…`). Dot segments are resolved first (also
 * when percent-encoded, as browsers do), so `/i/a/x/../../b/y` is a request for b/y and is
 * authorised as such; names must match the account-name pattern exactly, so encoded slashes
 * or other escapes in the owner, instance or port name never match anything.
 */
export interface ProxyRoute {
  owner: string;
  instance: string;
  /** Port name; undefined = the instance's first port. */
  port: string | undefined;
  /** The prefix stripped from the path ('' for host routes), sent as X-Forwarded-Prefix. */
  prefix: string;
  /** Path and query sent upstream. */
  upstreamPath: string;
  /** Set for instance hosts: the host label, whose own cookie is the credential there. */
  host?: string;
  /** Path routing on the main origin: responses get a CSP sandbox (an opaque origin). */
  sandbox?: boolean;
  /** A `/i/…` address while path routing is off: answered with a redirect to the instance host. */
  moved?: boolean;
}

const NAME = /^[a-z0-9_.-]{1,64}$/;
const DOT = /^(?:\.|%2e){1,2}$/i;

/** True when the raw URL is in the proxy's path space (checked before anything else). */
export const isProxyPath = (url: string): boolean => url.startsWith('/i/') || url === '/i';

/** The route of a path-addressed request, or undefined when it names no valid instance. */
export function routeByPath(url: string): ProxyRoute | undefined {
  const q = url.indexOf('?');
  let path = q < 0 ? url : url.slice(0, q);
  const query = q < 0 ? '' : url.slice(q);
  if (path.includes('%2') || path.includes('/.')) path = removeDotSegments(path);
  if (!path.startsWith('/i/')) return undefined;
  // Walks the segments after '/i/' by index: this runs on every proxied request.
  let at = 3;
  const owner = segmentAt(path, at);
  at += owner.length + 1;
  const instance = segmentAt(path, at);
  at += instance.length + 1;
  if (!isName(owner) || !isName(instance)) return undefined;
  let port: string | undefined;
  if (segmentAt(path, at) === 'port') {
    port = segmentAt(path, at + 5);
    if (!isName(port)) return undefined;
    at += 5 + port.length + 1;
  }
  const end = at - 1; // the index just past the prefix
  return { owner, instance, port, prefix: path.slice(0, end), upstreamPath: (end < path.length ? path.slice(end) : '/') + query };
}

/** The path segment starting at `from` ('' past the end). */
function segmentAt(path: string, from: number): string {
  const slash = path.indexOf('/', from);
  return path.slice(from, slash < 0 ? undefined : slash);
}

/** An account-pattern name that is not a dot segment. */
const isName = (s: string) => NAME.test(s) && s !== '.' && s !== '..';

/** RFC 3986 §5.2.4, treating %2e as a dot like the WHATWG URL parser does. */
export function removeDotSegments(path: string): string {
  const out: string[] = [];
  const segs = path.split('/');
  for (let i = 1; i < segs.length; i++) {
    const s = segs[i]!;
    const last = i === segs.length - 1;
    if (DOT.test(s)) {
      if (s.replace(/%2e/gi, '.') === '..') out.pop();
      if (last) out.push('');
      continue;
    }
    out.push(s);
  }
  return `/${out.join('/')}`;
}

/** Whether a query string may hold a `token` parameter (also with a percent-encoded name). */
const mayHoldToken = (query: string) => /oken|%/i.test(query);

const paramName = (kv: string): string => {
  const raw = kv.split('=', 1)[0]!.replace(/\+/g, ' ');
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
};

/** The `token` query parameter of a URL, if any. */
export function queryToken(url: string): string | undefined {
  const q = url.indexOf('?');
  if (q < 0 || !mayHoldToken(url.slice(q + 1))) return undefined;
  const token = new URLSearchParams(url.slice(q + 1)).get('token');
  return token || undefined;
}

/** Removes every `token` parameter (however its name is encoded) so it never reaches the upstream. */
export function stripTokenParam(pathAndQuery: string): string {
  const q = pathAndQuery.indexOf('?');
  if (q < 0 || !mayHoldToken(pathAndQuery.slice(q + 1))) return pathAndQuery;
  const kept = pathAndQuery
    .slice(q + 1)
    .split('&')
    .filter((kv) => paramName(kv) !== 'token');
  return pathAndQuery.slice(0, q) + (kept.length ? `?${kept.join('&')}` : '');
}
