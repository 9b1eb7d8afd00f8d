/**
 * The golem-herder adapter (golem-herder v1.4.0's HTTP and WebSocket API): tokens, daemons,
 * controlled and ad-hoc minions, golems. Each part is a thin translation over corral's core:
 * accounts and credits (tokens.ts), instances (daemons.ts, golems.ts), the proxy
 * (daemon-proxy.ts), jobs (minions.ts) and the relay (relay-sockets.ts).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { CompatPluginOptions } from '../index.js';
import { browserAccess } from './browser.js';
import { daemonRoutes } from './daemons.js';
import { interceptDaemonProxy } from './daemon-proxy.js';
import { acceptMultipart } from './forms.js';
import { golemRoutes } from './golems.js';
import { minionRoutes } from './minions.js';
import { ensureUser } from './owners.js';
import { relaySocketRoutes } from './relay-sockets.js';
import { tokenRoutes } from './tokens.js';

export const golemHerder: FastifyPluginAsyncTypebox<CompatPluginOptions<'golemHerder'>> = async (app, opts) => {
  const { corral, settings } = opts;
  // Without auth, callers without a token act as this user: it must exist.
  if (!settings.auth) await ensureUser(corral, settings.runAs);
  browserAccess(app);
  const c = corral.config.jobs;
  await acceptMultipart(app, { fileSize: c.maxTotalFileBytes, files: c.maxFiles, bodyLimit: c.maxTotalFileBytes });
  interceptDaemonProxy(app.server, app.prefix, opts.proxy, !!corral.config.tls);
  await app.register(tokenRoutes, opts);
  await app.register(daemonRoutes, opts);
  await app.register(minionRoutes, opts);
  await app.register(relaySocketRoutes, opts);
  await app.register(golemRoutes, opts);
};
