/**
 * The authenticating reverse proxy. It sits in front of fastify on the raw node server
 * (see `intercept`): requests for an instance host (origins.ts), or for `/i/…` on the main
 * origin, never enter fastify's pipeline. Each is authenticated by a cached cookie or token
 * check, authorised (owner, admin, or shared with), then forwarded over a pooled connection
 * or tunnelled as a WebSocket.
 *
 * Instance hosts only take their own cookie (from the handshake in host-login.ts) or a
 * token, never the main session cookie; a page from another site may navigate to them but
 * not read or post with that cookie (Fetch Metadata). `/i/…` is served only with the
 * unsafe `proxy.pathRouting`, sandboxed by CSP; otherwise it redirects to the instance host.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Principal } from '../core/accounts/index.js';
import { hasScope } from '../core/accounts/index.js';
import { HostSessionStore } from '../store/host-sessions.js';
import type { Corral } from '../core/corral.js';
import type { ProxySettings } from '../store/proxy.js';
import { Activity } from './activity.js';
import { forward, UpstreamPools, type ForwardFailure } from './forward.js';
import { upstreamHeaders, type ForwardContext } from './headers.js';
import { IdentityAssertions } from './identity-assertion.js';
import { CALLBACK_PATH, HOST_COOKIE, HostLogin, mainSessionHash, RESERVED_PREFIX } from './host-login.js';
import { hostCredential, IdentityCache, presentedCredential, type Credential } from './identity.js';
import { hostLabel, Origins } from './origins.js';
import { answers, rejectUpgrade, sendAnswer, wantsHtml, type ProxyAnswer } from './pages.js';
import { isProxyPath, routeByPath, stripTokenParam, type ProxyRoute } from './route.js';
import { securityHeaders } from './headers.js';
import type { ProxyTarget, ProxyTargets } from './targets.js';
import { openTunnel, TunnelRegistry } from './websocket.js';

interface Resolved {
  target: ProxyTarget | undefined;
  settings: ProxySettings | undefined;
  until: number;
}

type Decision =
  | { kind: 'answer'; answer: ProxyAnswer; login?: boolean }
  | { kind: 'forward'; principal: Principal; credential: Credential; target: ProxyTarget; host: string; port: number };

export class Proxy {
  readonly activity = new Activity();
  readonly tunnels = new TunnelRegistry();
  readonly identity: IdentityCache;
  /** The main origin and the instance hosts' addresses. */
  readonly origins: Origins;
  /** The handshake that logs a browser in to an instance host. */
  readonly hostLogin: HostLogin;
  /** Signs X-Corral-Identity; undefined when assertions are off. */
  readonly assertions: IdentityAssertions | undefined;
  private readonly pools: UpstreamPools;
  private readonly resolved = new Map<string, Resolved>();
  private readonly starting = new Set<string>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly tls: boolean;
  private readonly cfg: Corral['config']['proxy'];

  constructor(
    private readonly corral: Corral,
    private targets: ProxyTargets,
  ) {
    this.cfg = corral.config.proxy;
    this.tls = !!corral.config.tls;
    this.origins = new Origins(corral.config);
    this.hostLogin = new HostLogin(new HostSessionStore(corral.store.db), corral.store.users, corral.config.auth.sessionTtlSeconds);
    this.identity = new IdentityCache(corral.accounts, this.cfg.authCacheMs, this.hostLogin);
    const assertion = this.cfg.identityAssertion;
    this.assertions = assertion.enabled ? new IdentityAssertions(corral.config.data, assertion.ttlSeconds) : undefined;
    this.pools = new UpstreamPools({
      connections: this.cfg.maxConnectionsPerUpstream,
      connectTimeoutMs: this.cfg.connectTimeoutSeconds * 1000,
      headersTimeoutMs: this.cfg.upstreamTimeoutSeconds * 1000,
    });
    this.timers.push(
      setInterval(() => void this.recheckTunnels(), this.cfg.websocketRecheckSeconds * 1000),
      setInterval(() => void this.cullOnce(), this.cfg.cullIntervalSeconds * 1000),
    );
    for (const t of this.timers) t.unref();
  }

  /** Replaces where instances are looked up (tests, or a split proxy/manager deployment). */
  useTargets(targets: ProxyTargets): void {
    this.targets = targets;
    targets.onChange?.(() => this.invalidate());
    this.invalidate();
  }

  /** Routes `/i/…` and instance hosts to the proxy before fastify sees them. */
  intercept(server: Server): void {
    this.origins.listenOn(server);
    const emit = server.emit.bind(server) as (event: string, ...args: unknown[]) => boolean;
    server.emit = ((event: string, ...args: unknown[]) => {
      if (event === 'request' || event === 'upgrade') {
        const req = args[0] as IncomingMessage;
        const route = this.route(req);
        if (route !== null) {
          if (event === 'request') void this.handle(req, args[1] as ServerResponse, route);
          else void this.upgrade(req, args[1] as Duplex, args[2] as Buffer, route);
          return true;
        }
      }
      return emit(event, ...args);
    }) as typeof server.emit;
  }

  /** The proxy's own page or JSON error; its "Dashboard" link goes to the main origin, never the app's. */
  private answer(req: IncomingMessage, res: ServerResponse, a: ProxyAnswer): void {
    sendAnswer(req, res, a, this.tls, `${this.origins.main().origin}/ui/`);
  }

  /** null = not the proxy's; undefined = the proxy's, but names no valid instance (a malformed instance host too). */
  route(req: IncomingMessage): ProxyRoute | undefined | null {
    const url = req.url ?? '/';
    const host = this.origins.appHost(req.headers.host);
    if (host !== undefined) {
      if (host === null) return undefined;
      const upstreamPath = url.startsWith('/') ? url : `/${url}`;
      return { owner: host.owner, instance: host.instance, port: host.port, prefix: '', upstreamPath, host: host.label };
    }
    if (!isProxyPath(url)) return null;
    const r = routeByPath(url);
    if (!r) return undefined;
    return this.cfg.pathRouting ? { ...r, sandbox: true } : { ...r, moved: true };
  }

  async handle(req: IncomingMessage, res: ServerResponse, route: ProxyRoute | undefined): Promise<void> {
    const started = performance.now();
    try {
      await this.respond(req, res, route);
    } catch (e) {
      this.corral.log.error({ err: e }, 'proxy request failed');
      this.answer(req, res, answers.badGateway('the instance'));
    }
    // Counted once the response is handed to the socket (or the client left).
    this.corral.metrics.proxyRequest(res.statusCode, (performance.now() - started) / 1000);
  }

  private async respond(req: IncomingMessage, res: ServerResponse, route: ProxyRoute | undefined): Promise<void> {
    // A malformed instance host or /i/ path names nothing, whoever asks.
    if (!route) return this.answer(req, res, answers.notFound());
    if (route.moved) return this.redirectToHost(req, res, route);
    if (route.host !== undefined && route.upstreamPath.startsWith(RESERVED_PREFIX)) return this.hostCallback(req, res, route);
    const d = await this.decide(req, route, req.method === 'GET' || req.method === 'HEAD' ? 'proxy:read' : 'proxy:write');
    if (d.kind === 'answer') {
      if (d.login && wantsHtml(req)) return this.redirectToLogin(req, res, route);
      return this.answer(req, res, d.answer);
    }
    this.activity.touch(d.target.instanceId);
    const headers = upstreamHeaders(req, await this.forwardContext(req, route!, d, false));
    await forward(this.pools.get(d.host, d.port), req, res, stripTokenParam(route!.upstreamPath), headers, this.tls, !!route!.sandbox).catch(
      (f: ForwardFailure) => {
        const name = `${route!.owner}/${route!.instance}`;
        this.answer(req, res, f === 'timeout' ? answers.gatewayTimeout(name) : answers.badGateway(name));
      },
    );
  }

  async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, route: ProxyRoute | undefined): Promise<void> {
    socket.on('error', () => socket.destroy());
    try {
      if (!route || route.moved || (route.host !== undefined && route.upstreamPath.startsWith(RESERVED_PREFIX))) return rejectUpgrade(socket, 404, 'Not Found');
      const d = await this.decide(req, route, 'proxy:write');
      if (d.kind === 'answer') {
        const reason = { 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found' }[d.answer.status] ?? 'Service Unavailable';
        return rejectUpgrade(socket, d.answer.status, reason);
      }
      const id = d.target.instanceId;
      this.activity.touch(id);
      const tunnel = openTunnel(
        req,
        socket,
        head,
        {
          host: d.host,
          port: d.port,
          path: stripTokenParam(route!.upstreamPath),
          headers: upstreamHeaders(req, await this.forwardContext(req, route!, d, true)),
          connectTimeoutMs: this.cfg.connectTimeoutSeconds * 1000,
        },
        () => this.activity.touch(id),
      );
      this.tunnels.add(d.credential, tunnel);
    } catch (e) {
      this.corral.log.error({ err: e }, 'proxy upgrade failed');
      rejectUpgrade(socket, 502, 'Bad Gateway');
    }
  }

  /** Whether the user is in a group the instance is shared with (a query only when it is shared with any). */
  private async inSharedGroup(p: Principal, settings: ProxySettings | undefined): Promise<boolean> {
    if (!settings?.sharedWithGroups.length) return false;
    const groups = await this.corral.accounts.users.groups.of(p.user.id);
    return groups.some((g) => settings.sharedWithGroups.includes(g));
  }

  /** Authentication, authorisation and the instance's state, in that order. */
  private async decide(req: IncomingMessage, route: ProxyRoute | undefined, scope: 'proxy:read' | 'proxy:write'): Promise<Decision> {
    const url = req.url ?? '/';
    const credential = route?.host !== undefined ? hostCredential(req, url, route.host) : presentedCredential(req, url);
    const principal = credential && (await this.identity.principal(credential));
    if (!credential || !principal) return { kind: 'answer', answer: answers.unauthenticated(), login: true };
    if (credential.kind === 'host' && !sameSiteUseAllowed(req)) return { kind: 'answer', answer: answers.crossSite() };
    if (credential.kind === 'token' && !hasScope(principal.scopes, scope)) return { kind: 'answer', answer: answers.noScope(scope) };
    if (!route) return { kind: 'answer', answer: answers.notFound() };
    const { target, settings } = await this.lookup(route.owner, route.instance);
    if (!target || !(mayPass(principal, target, settings) || (await this.inSharedGroup(principal, settings)))) {
      return { kind: 'answer', answer: answers.notFound() };
    }
    const port = route.port === undefined ? target.ports[0] : target.ports.find((p) => p.name === route.port);
    if (!port) return { kind: 'answer', answer: answers.notFound() };
    const name = `${route.owner}/${route.instance}`;
    if (target.state !== 'running') {
      if (settings?.startOnDemand && isStopped(target.state)) this.startOnDemand(target, route);
      const starting = ['pending', 'starting', 'backoff'].includes(target.state) || !!settings?.startOnDemand;
      return { kind: 'answer', answer: starting ? answers.starting(name) : answers.stopped(name) };
    }
    return { kind: 'forward', principal, credential, target, host: port.host, port: port.port };
  }

  private async forwardContext(req: IncomingMessage, route: ProxyRoute, d: Extract<Decision, { kind: 'forward' }>, websocket: boolean): Promise<ForwardContext> {
    const { user } = d.principal;
    return {
      clientIp: req.socket.remoteAddress ?? '',
      proto: this.tls ? 'https' : 'http',
      host: req.headers.host ?? '',
      prefix: route.prefix,
      user: user.name,
      assertion: this.assertions && (await this.assertions.for(user, `${route.owner}/${route.instance}`)),
      credential: d.credential,
      websocket,
    };
  }

  /** The instance and the proxy's settings for it, cached briefly like identities. */
  async lookup(owner: string, instance: string): Promise<{ target?: ProxyTarget | undefined; settings?: ProxySettings | undefined }> {
    const key = `${owner}/${instance}`;
    const now = Date.now();
    const hit = this.resolved.get(key);
    if (hit && hit.until > now) return hit;
    const target = await this.targets.resolve(owner, instance);
    const settings = target && (await this.corral.store.proxy.settings(target.instanceId));
    const entry = { target, settings, until: now + this.cfg.authCacheMs };
    if (this.resolved.size > 10_000) this.resolved.clear();
    if (this.cfg.authCacheMs > 0) this.resolved.set(key, entry);
    return entry;
  }

  /** Forget cached lookups (after settings change or an instance starts or stops). */
  invalidate(owner?: string, instance?: string): void {
    if (owner && instance) this.resolved.delete(`${owner}/${instance}`);
    else this.resolved.clear();
  }

  private startOnDemand(target: ProxyTarget, route: ProxyRoute): void {
    const { instanceId } = target;
    if (this.starting.has(instanceId)) return;
    this.starting.add(instanceId);
    this.corral.log.info({ instance: `${route.owner}/${route.instance}` }, 'starting instance on demand');
    void this.targets
      .start(target)
      .catch((e: unknown) => this.corral.log.warn({ err: e, instanceId }, 'start on demand failed'))
      .finally(() => {
        this.starting.delete(instanceId);
        this.invalidate(route.owner, route.instance);
      });
  }

  /**
   * A browser without a credential: on an instance host, to the main origin's handshake
   * (which logs in first if needed); under path routing, to the login form.
   */
  private redirectToLogin(req: IncomingMessage, res: ServerResponse, route: ProxyRoute | undefined): void {
    const path = stripTokenParam(req.url ?? '/');
    const location =
      route?.host !== undefined
        ? `${this.origins.main().origin}/host-login?host=${route.host}&next=${encodeURIComponent(path)}`
        : `/login?next=${encodeURIComponent(path)}`;
    redirect(res, location, this.tls);
  }

  /** `/i/…` without path routing: GET and HEAD are sent to the instance's host, the rest gets 404. */
  private redirectToHost(req: IncomingMessage, res: ServerResponse, route: ProxyRoute): void {
    const label = hostLabel(route.owner, route.instance, route.port);
    if (!label || (req.method !== 'GET' && req.method !== 'HEAD')) {
      return this.answer(req, res, answers.pathRoutingOff(`${route.owner}/${route.instance}`));
    }
    redirect(res, `${this.origins.appOrigin(label)}${stripTokenParam(route.upstreamPath)}`, this.tls);
  }

  /** `/_corral/callback?code=…` on an instance host: trades the code for this host's cookie. */
  private async hostCallback(req: IncomingMessage, res: ServerResponse, route: ProxyRoute): Promise<void> {
    const q = route.upstreamPath.indexOf('?');
    const path = q < 0 ? route.upstreamPath : route.upstreamPath.slice(0, q);
    if (path !== CALLBACK_PATH || (req.method !== 'GET' && req.method !== 'HEAD')) return this.answer(req, res, answers.notFound());
    const code = new URLSearchParams(q < 0 ? '' : route.upstreamPath.slice(q + 1)).get('code');
    const done = code && code.length <= 128 ? await this.hostLogin.exchange(code, route.host!) : undefined;
    if (!done) return this.answer(req, res, answers.badHostLogin());
    const cookie = `${HOST_COOKIE}=${done.cookieValue}; Path=/; Max-Age=${done.maxAgeSeconds}; HttpOnly; SameSite=Lax${this.tls ? '; Secure' : ''}`;
    redirect(res, done.next, this.tls, { 'set-cookie': cookie, 'referrer-policy': 'no-referrer' });
  }

  /** Closes tunnels whose session ended or whose token was revoked. */
  async recheckTunnels(): Promise<void> {
    for (const c of this.tunnels.credentials()) {
      if (!(await this.identity.fresh(c))) this.tunnels.closeAll(c);
    }
  }

  /**
   * Ends a credential at once: forgets it and closes its tunnels (the logout form). For a
   * main session, also its instance hosts' sessions and their tunnels.
   */
  revoke(c: Credential): void {
    this.identity.forget(c);
    this.tunnels.closeAll(c);
    if (c.kind !== 'session') return;
    const hash = mainSessionHash(c.value);
    this.identity.forgetHostsOf(hash);
    void this.hostLogin
      .endFor(hash)
      .then(() => this.recheckTunnels())
      .catch((e: unknown) => this.corral.log.warn({ err: e }, 'could not end instance host sessions'));
  }

  async cullOnce(): Promise<string[]> {
    this.pools.sweep();
    try {
      const stopped = await this.activity.cull(this.corral.store.proxy, this.targets, this.corral.log);
      if (stopped.length) this.invalidate();
      return stopped;
    } catch (e) {
      this.corral.log.warn({ err: e }, 'idle culler pass failed');
      return [];
    }
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.tunnels.closeEverything();
    await this.activity.flush(this.corral.store.proxy).catch(() => undefined);
    await this.pools.close();
  }
}

/** A redirect with corral's security headers, never cached. */
function redirect(res: ServerResponse, location: string, tls: boolean, extra: Record<string, string> = {}): void {
  res.writeHead(302, { ...securityHeaders(tls), location, 'cache-control': 'no-store', ...extra });
  res.end();
}

/**
 * Fetch Metadata resource isolation for instance-host cookies: a request another site's
 * page started (instance hosts are all same-site with each other and the main origin) may
 * only be a top-level GET/HEAD navigation; its scripts may not read, post or open WebSockets
 * with this host's cookie. Requests without the headers (non-browser clients) pass.
 */
export function sameSiteUseAllowed(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  const origin = req.headers.origin;
  if (origin !== undefined && req.headers.upgrade !== undefined) {
    // WebSockets are not covered by CORS: only this host's own pages may open one.
    try {
      if (new URL(origin).host !== req.headers.host) return false;
    } catch {
      return false;
    }
  }
  if (site === undefined || site === 'same-origin' || site === 'none') return true;
  const navigation = req.headers['sec-fetch-mode'] === 'navigate' && req.headers['sec-fetch-dest'] === 'document';
  return navigation && (req.method === 'GET' || req.method === 'HEAD');
}

const isStopped = (state: string) => ['stopped', 'exited', 'failed', 'created'].includes(state);

/** The owner, admins and users the owner shared with may pass. */
export function mayPass(p: Principal, target: ProxyTarget, settings: ProxySettings | undefined): boolean {
  return p.user.id === target.ownerId || p.user.role === 'admin' || !!settings?.sharedWith.includes(p.user.id);
}
