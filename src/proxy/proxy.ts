/**
 * The authenticating reverse proxy. It sits in front of fastify on the raw node server
 * (see `intercept`): requests for `/i/…` or for a wildcard instance host never enter
 * fastify's pipeline. Each is authenticated by a cached cookie or token check, authorised
 * (owner, admin, or shared with), then forwarded over a pooled connection or tunnelled as
 * a WebSocket.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Principal } from '../core/accounts/index.js';
import { hasScope } from '../core/accounts/index.js';
import type { Corral } from '../core/corral.js';
import type { ProxySettings } from '../store/proxy.js';
import { Activity } from './activity.js';
import { forward, UpstreamPools, type ForwardFailure } from './forward.js';
import { upstreamHeaders, type ForwardContext } from './headers.js';
import { IdentityAssertions } from './identity-assertion.js';
import { IdentityCache, presentedCredential, type Credential } from './identity.js';
import { answers, rejectUpgrade, sendAnswer, wantsHtml, type ProxyAnswer } from './pages.js';
import { isProxyPath, routeByHost, routeByPath, stripTokenParam, type ProxyRoute } from './route.js';
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
    this.identity = new IdentityCache(corral.accounts, this.cfg.authCacheMs);
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

  /** null = not the proxy's; undefined = the proxy's, but names no valid instance. */
  route(req: IncomingMessage): ProxyRoute | undefined | null {
    const url = req.url ?? '/';
    if (this.cfg.baseDomain) {
      const r = routeByHost(req.headers.host, this.cfg.baseDomain, url);
      if (r) return r;
    }
    return isProxyPath(url) ? routeByPath(url) : null;
  }

  async handle(req: IncomingMessage, res: ServerResponse, route: ProxyRoute | undefined): Promise<void> {
    const started = performance.now();
    try {
      await this.respond(req, res, route);
    } catch (e) {
      this.corral.log.error({ err: e }, 'proxy request failed');
      sendAnswer(req, res, answers.badGateway('the instance'), this.tls);
    }
    // Counted once the response is handed to the socket (or the client left).
    this.corral.metrics.proxyRequest(res.statusCode, (performance.now() - started) / 1000);
  }

  private async respond(req: IncomingMessage, res: ServerResponse, route: ProxyRoute | undefined): Promise<void> {
    const d = await this.decide(req, route, req.method === 'GET' || req.method === 'HEAD' ? 'proxy:read' : 'proxy:write');
    if (d.kind === 'answer') {
      if (d.login && wantsHtml(req)) return this.redirectToLogin(req, res);
      return sendAnswer(req, res, d.answer, this.tls);
    }
    this.activity.touch(d.target.instanceId);
    const headers = upstreamHeaders(req, await this.forwardContext(req, route!, d, false));
    await forward(this.pools.get(d.host, d.port), req, res, stripTokenParam(route!.upstreamPath), headers, this.tls).catch(
      (f: ForwardFailure) => {
        const name = `${route!.owner}/${route!.instance}`;
        sendAnswer(req, res, f === 'timeout' ? answers.gatewayTimeout(name) : answers.badGateway(name), this.tls);
      },
    );
  }

  async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, route: ProxyRoute | undefined): Promise<void> {
    socket.on('error', () => socket.destroy());
    try {
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

  /** Authentication, authorisation and the instance's state, in that order. */
  private async decide(req: IncomingMessage, route: ProxyRoute | undefined, scope: 'proxy:read' | 'proxy:write'): Promise<Decision> {
    const credential = presentedCredential(req, req.url ?? '/');
    const principal = credential && (await this.identity.principal(credential));
    if (!credential || !principal) return { kind: 'answer', answer: answers.unauthenticated(), login: true };
    if (credential.kind === 'token' && !hasScope(principal.scopes, scope)) return { kind: 'answer', answer: answers.noScope(scope) };
    if (!route) return { kind: 'answer', answer: answers.notFound() };
    const { target, settings } = await this.lookup(route.owner, route.instance);
    if (!target || !mayPass(principal, target, settings)) return { kind: 'answer', answer: answers.notFound() };
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

  private redirectToLogin(req: IncomingMessage, res: ServerResponse): void {
    const host = req.headers.host ?? '';
    const onInstanceHost = !isProxyPath(req.url ?? '/');
    // On an instance host the login page lives on the main origin (publicUrl, else the base domain).
    const scheme = this.tls ? 'https' : 'http';
    const main = this.corral.config.publicUrl?.replace(/\/$/, '') ?? `${scheme}://${this.cfg.baseDomain}`;
    const base = onInstanceHost ? main : '';
    const next = onInstanceHost ? `${scheme}://${host}${req.url ?? '/'}` : (req.url ?? '/');
    res.writeHead(302, {
      location: `${base}/login?next=${encodeURIComponent(stripTokenParam(next))}`,
      'cache-control': 'no-store',
      'x-frame-options': 'SAMEORIGIN',
      'x-content-type-options': 'nosniff',
    });
    res.end();
  }

  /** Closes tunnels whose session ended or whose token was revoked. */
  async recheckTunnels(): Promise<void> {
    for (const c of this.tunnels.credentials()) {
      if (!(await this.identity.fresh(c))) this.tunnels.closeAll(c);
    }
  }

  /** Ends a credential at once: forgets it and closes its tunnels (the logout form). */
  revoke(c: Credential): void {
    this.identity.forget(c);
    this.tunnels.closeAll(c);
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

const isStopped = (state: string) => ['stopped', 'exited', 'failed', 'created'].includes(state);

/** The owner, admins and users the owner shared with may pass. */
export function mayPass(p: Principal, target: ProxyTarget, settings: ProxySettings | undefined): boolean {
  return p.user.id === target.ownerId || p.user.role === 'admin' || !!settings?.sharedWith.includes(p.user.id);
}
