// The API client: cookie session + the session's CSRF token on every state-changing call.
let me;

export async function whoami() {
  if (me) return me;
  const res = await fetch('/api/v1/me', { headers: { accept: 'application/json' } });
  if (res.status === 401) {
    location.href = `/login?next=${encodeURIComponent(location.pathname + location.hash)}`;
    throw new Error('not logged in');
  }
  me = await res.json();
  return me;
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** JSON call; `body` is JSON unless it is FormData. Throws ApiError with the server's message. */
export async function api(method, path, body) {
  const { csrfToken } = await whoami();
  const headers = { accept: 'application/json' };
  if (method !== 'GET') headers['x-csrf-token'] = csrfToken;
  const init = { method, headers };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(`/api/v1${path}`, init);
  if (res.status === 204) return undefined;
  const text = await res.text();
  const data = text ? safeJson(text) : undefined;
  if (!res.ok) {
    if (res.status === 401) location.href = '/login';
    throw new ApiError(res.status, data?.error?.code ?? 'error', data?.error?.message ?? `${res.status} ${res.statusText}`);
  }
  return data;
}

function safeJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return { text };
  }
}

/** Streams a text response line by line until `signal` aborts. */
export async function streamLines(path, onLine, signal) {
  const res = await fetch(`/api/v1${path}`, { signal });
  if (!res.ok) throw new ApiError(res.status, 'error', `${res.status} ${res.statusText}`);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      onLine(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
  }
}

let addresses;

/** Where instances are served (fetched once): each on a host of its own, see docs/proxy.md. */
export async function instanceAddresses() {
  addresses ??= await api('GET', '/proxy');
  return addresses;
}

/**
 * An instance's address from `instanceAddresses()` (a named `port` other than its first gets
 * `--{port}` after the owner), or null when its names cannot form a host name.
 */
export function instanceUrl(a, owner, name, port) {
  const ok = new RegExp(a.namePattern);
  if (!ok.test(owner) || !ok.test(name) || (port !== undefined && !/^[a-z][a-z0-9_]{0,30}$/.test(port))) return null;
  const label = port === undefined ? `${name}--${owner}` : `${name}--${owner}--${port}`;
  if (label.length > 63) return null;
  return a.appUrl.replace('{instance}', name).replace('{owner}', port === undefined ? owner : `${owner}--${port}`);
}

/** The events stream (`/api/v1/events`): `handlers` by event type (state, deleted, stats). Returns its close. */
export function liveEvents(handlers) {
  const events = new EventSource('/api/v1/events');
  for (const [type, fn] of Object.entries(handlers)) events.addEventListener(type, (e) => fn(JSON.parse(e.data)));
  return () => events.close();
}
