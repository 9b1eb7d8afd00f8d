/**
 * The proxy's own answers: small HTML pages for browsers, `{"error":{…}}` JSON for API and
 * XHR clients, always with the security headers and no-store.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { securityHeaders } from './headers.js';

export const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** A browser navigation (gets pages and redirects) rather than an API or XHR call (gets JSON). */
export function wantsHtml(req: IncomingMessage): boolean {
  if (String(req.headers['x-requested-with']).toLowerCase() === 'xmlhttprequest') return false;
  return (req.method === 'GET' || req.method === 'HEAD') && (req.headers.accept ?? '').includes('text/html');
}

export interface ProxyAnswer {
  status: number;
  code: string;
  title: string;
  message: string;
  /** Seconds after which the browser page reloads itself (the "starting…" page). */
  refresh?: number;
}

export const answers = {
  notFound: (): ProxyAnswer => ({ status: 404, code: 'not_found', title: 'Not found', message: 'There is nothing here.' }),
  unauthenticated: (): ProxyAnswer => ({
    status: 401,
    code: 'unauthenticated',
    title: 'Log in',
    message: 'log in or send a token with the proxy scope: Authorization: Bearer <token>',
  }),
  noScope: (scope: string): ProxyAnswer => ({ status: 403, code: 'forbidden', title: 'Forbidden', message: `this needs the "${scope}" scope` }),
  /** The handshake's callback without a good code (missing, unknown, used, expired, another host's). */
  badHostLogin: (): ProxyAnswer => ({
    status: 400,
    code: 'host_login_invalid',
    title: 'Login link not valid',
    message: 'This login link is missing, used, expired or meant for another host. Open the instance again from its address.',
  }),
  /** Fetch Metadata: another site's page may navigate here, not read or post with this host's cookie. */
  crossSite: (): ProxyAnswer => ({
    status: 403,
    code: 'cross_site_refused',
    title: 'Forbidden',
    message: "a request from another site's page cannot use this instance host's cookie",
  }),
  /** A `/i/…` address while path routing is off, when there is no redirect to give. */
  pathRoutingOff: (name: string): ProxyAnswer => ({
    status: 404,
    code: 'path_routing_off',
    title: 'Not found',
    message: `${name} is served on a host of its own, not under /i/ (see GET /api/v1/proxy/${name} for its url)`,
  }),
  starting: (name: string): ProxyAnswer => ({
    status: 503,
    code: 'instance_starting',
    title: 'Starting…',
    message: `${name} is starting; this page reloads by itself.`,
    refresh: 2,
  }),
  stopped: (name: string): ProxyAnswer => ({
    status: 503,
    code: 'instance_stopped',
    title: 'Stopped',
    message: `${name} is not running. Start it from the dashboard.`,
  }),
  badGateway: (name: string): ProxyAnswer => ({
    status: 502,
    code: 'upstream_unavailable',
    title: 'Bad gateway',
    message: `${name} is not answering.`,
  }),
  gatewayTimeout: (name: string): ProxyAnswer => ({
    status: 504,
    code: 'upstream_timeout',
    title: 'Gateway timeout',
    message: `${name} took too long to answer.`,
  }),
};

/**
 * `dashboard` is where the page's "Dashboard" link goes: on an instance host a relative
 * `/ui/` would be the app's own path, so the proxy gives the main origin's (`{publicUrl}/ui/`).
 */
export function sendAnswer(req: IncomingMessage, res: ServerResponse, a: ProxyAnswer, tls: boolean, dashboard = '/ui/'): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const html = wantsHtml(req);
  const headers: Record<string, string> = {
    ...securityHeaders(tls),
    'cache-control': 'no-store',
    'content-type': html ? 'text/html; charset=utf-8' : 'application/json; charset=utf-8',
  };
  if (a.refresh) {
    headers['retry-after'] = String(a.refresh);
    headers.refresh = String(a.refresh);
  }
  const body = html ? page(a, dashboard) : JSON.stringify({ error: { code: a.code, message: a.message } });
  res.writeHead(a.status, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}

/**
 * The pages' own few rules, inline: on an instance host `/ui/style.css` is the app's to
 * answer (or not), so a linked stylesheet would leave these pages unstyled there.
 */
const PAGE_STYLE =
  'body{margin:0;font-family:system-ui,sans-serif;color:#1d2430;background:#f6f7f9;line-height:1.45;display:grid;place-items:center;min-height:100vh}' +
  'main{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:1rem 1.2rem;width:min(28rem,92vw)}' +
  'h1{font-size:1.4rem;margin:.2rem 0 1rem}a{color:#1f5fbf}';

function page(a: ProxyAnswer, dashboard: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(a.title)} · corral</title>
<meta name="viewport" content="width=device-width,initial-scale=1"><style>${PAGE_STYLE}</style></head>
<body class="centered"><main class="card"><h1>${escapeHtml(a.title)}</h1><p>${escapeHtml(a.message)}</p>
<p><a href="${escapeHtml(dashboard)}">Dashboard</a></p></main></body></html>`;
}

export interface LoginForm {
  /** The page title and heading. */
  title: string;
  heading: string;
  /** Where the form posts, and the name of its user-name field. */
  action: string;
  userField: string;
  /** Hidden fields (next, a CSRF token…). */
  hidden: Record<string, string>;
  error?: string | undefined;
  stylesheet?: string;
  /** Sign-in buttons (identity providers), shown above the form. */
  links?: { href: string; label: string }[];
  /** false: no password form, only the links (`auth.localPasswords: false`). */
  passwordForm?: boolean;
  /** Set: a "Sign in with a passkey" button (web/passkey-login.js), going here once signed in. */
  passkeyNext?: string | undefined;
}

/** A login form: corral's own (/login) and the pixelated-dispatcher proxy's (/auth/login). */
export function loginFormPage(f: LoginForm): string {
  const hidden = Object.entries(f.hidden)
    .map(([name, value]) => `  <input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">\n`)
    .join('');
  const user = escapeHtml(f.userField);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(f.title)}</title>
<meta name="viewport" content="width=device-width,initial-scale=1">${f.stylesheet ? `<link rel="stylesheet" href="${escapeHtml(f.stylesheet)}">` : ''}</head>
<body class="centered"><main class="card">
<h1>${escapeHtml(f.heading)}</h1>
${f.error ? `<p class="error" role="alert">${escapeHtml(f.error)}</p>` : ''}
${(f.links ?? []).map((l) => `<p><a class="button" href="${escapeHtml(l.href)}">${escapeHtml(l.label)}</a></p>\n`).join('')}${
    f.passkeyNext === undefined
      ? ''
      : `<p><button type="button" class="button" id="passkey-sign-in" data-next="${escapeHtml(f.passkeyNext)}">Sign in with a passkey</button></p>
<p class="error" role="alert" id="passkey-error" hidden></p>
<script type="module" src="/ui/passkey-login.js"></script>\n`
  }${
    f.passwordForm === false
      ? ''
      : `<form method="post" action="${escapeHtml(f.action)}">
${hidden}  <label for="${user}">User name</label>
  <input id="${user}" name="${user}" autocomplete="username" autocapitalize="none" required autofocus>
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required>
  <button type="submit" class="primary">Log in</button>
</form>`
  }
</main></body></html>`;
}

/** A minimal raw HTTP answer on an upgrade socket that will not become a WebSocket. */
export function rejectUpgrade(socket: { write(s: string): unknown; destroy(): void }, status: number, reason: string): void {
  const body = JSON.stringify({ error: { code: reason.toLowerCase().replace(/ /g, '_'), message: reason } });
  socket.write(
    `HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  socket.destroy();
}
