/** The proxy attached to the HTTP server: see proxy.ts. */
import type { FastifyInstance } from 'fastify';
import type { Corral } from '../core/corral.js';
import { Proxy } from './proxy.js';
import { instanceTargets, type ProxyTargets } from './targets.js';

declare module 'fastify' {
  interface FastifyInstance {
    proxy: Proxy;
  }
}

/** Used until an instances core is present: every instance is unknown. */
const noTargets: ProxyTargets = {
  resolve: async () => undefined,
  start: async () => undefined,
  stop: async () => undefined,
};

/** Creates the proxy, puts it in front of fastify on the raw server, and closes it with the app. */
export function attachProxy(app: FastifyInstance, corral: Corral): Proxy {
  const proxy = new Proxy(corral, noTargets);
  proxy.useTargets(instanceTargets(corral) ?? noTargets);
  proxy.intercept(app.server);
  app.decorate('proxy', proxy);
  // Tunnels are not the HTTP server's connections any more: end them before it closes.
  app.addHook('preClose', async () => proxy.tunnels.closeEverything());
  app.addHook('onClose', async () => proxy.close());
  return proxy;
}

export { Proxy } from './proxy.js';
export type { ProxyTarget, ProxyTargets, TargetPort } from './targets.js';
