/**
 * `/daemon/v1/proxy/{name}/…`: the reverse proxy to a daemon's first port, HTTP and WebSocket.
 * Like corral's own proxy, these requests are taken off the raw server before fastify (bodies
 * and upgrades stream through untouched) and handed to the same Proxy as
 * `/i/{owner}/daemon-{name}/…`: it authenticates (the token needs a proxy scope), checks the
 * caller owns the daemon, and forwards over its pooled connections.
 *
 * Only tokens count here, never the dashboard's session cookie: a daemon's page must not be
 * able to act with its viewer's corral session. Mounted under a prefix of the main listener,
 * daemon pages share the dashboard's origin, so they are also sandboxed by CSP (an opaque
 * origin), as path-routed instances are.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { presentedToken } from '../../proxy/identity.js';
import { answers, rejectUpgrade, sendAnswer } from '../../proxy/pages.js';
import type { Proxy } from '../../proxy/proxy.js';
import type { ProxyRoute } from '../../proxy/route.js';
import { DAEMON_NAME } from './daemons.js';
import { instanceNameFor } from './names.js';

const NAME = new RegExp(DAEMON_NAME);

/** Splits `{base}{name}{/rest}{?query}`; undefined when the name is not a daemon name. */
function parse(url: string, base: string): { name: string; prefix: string; upstreamPath: string } | undefined {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const query = q < 0 ? '' : url.slice(q);
  const afterBase = path.slice(base.length);
  const slash = afterBase.indexOf('/');
  const name = slash < 0 ? afterBase : afterBase.slice(0, slash);
  if (!NAME.test(name)) return undefined;
  return { name, prefix: `${base}${name}`, upstreamPath: `${slash < 0 ? '/' : afterBase.slice(slash)}${query}` };
}

export function interceptDaemonProxy(server: Server, prefix: string, proxy: Proxy, tls: boolean): void {
  const base = `${prefix}/daemon/v1/proxy/`;
  const onMainListener = prefix !== '';

  /** The proxy route for this request, or an answer when there is none. */
  async function routeOf(req: IncomingMessage): Promise<ProxyRoute | { status: number; reason: string }> {
    const parsed = parse(req.url ?? '/', base);
    if (!parsed) return { status: 404, reason: 'Not Found' };
    const credential = presentedToken(req, req.url ?? '/');
    const principal = credential && (await proxy.identity.principal(credential));
    if (!principal) return { status: 401, reason: 'Unauthorized' };
    // The daemon is the caller's own: its instance is looked up under their name.
    return {
      owner: principal.user.name,
      instance: instanceNameFor('daemon', parsed.name),
      port: undefined,
      prefix: parsed.prefix,
      upstreamPath: parsed.upstreamPath,
      sandbox: onMainListener,
    };
  }

  const emit = server.emit.bind(server) as (event: string, ...args: unknown[]) => boolean;
  server.emit = ((event: string, ...args: unknown[]) => {
    const req = args[0] as IncomingMessage | undefined;
    if ((event === 'request' || event === 'upgrade') && req?.url?.startsWith(base)) {
      void routeOf(req).then(
        (route) => {
          if (event === 'request') {
            const res = args[1] as ServerResponse;
            if ('status' in route) return sendAnswer(req, res, route.status === 401 ? answers.unauthenticated() : answers.notFound(), tls);
            return proxy.handle(req, res, route);
          }
          const socket = args[1] as Duplex;
          if ('status' in route) return rejectUpgrade(socket, route.status, route.reason);
          return proxy.upgrade(req, socket, args[2] as Buffer, route);
        },
        () => (event === 'request' ? (args[1] as ServerResponse).destroy() : (args[1] as Duplex).destroy()),
      );
      return true;
    }
    return emit(event, ...args);
  }) as typeof server.emit;
}
