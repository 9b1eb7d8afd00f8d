/**
 * Where the compat adapters listen: each enabled adapter on its own fastify app and port
 * (built like the main app: same options, error handling, auth and logging), or, with a
 * `prefix`, as a plugin of the main app. Both paths go through `registerAdapter`, so an
 * adapter behaves the same wherever it is mounted.
 */
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import websocket from '@fastify/websocket';
import Fastify, { type FastifyInstance } from 'fastify';
import { chmod, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Corral } from '../core/corral.js';
import { errors } from '../core/errors.js';
import { logOneLinePerRequest, serverOptions } from '../http/app.js';
import { authPlugin } from '../http/auth.js';
import { registerErrorHandling } from '../http/errors.js';
import { securityHeadersHook } from '../http/routes/ui.js';
import type { Proxy } from '../proxy/proxy.js';
import { isLoopbackHost } from './auth.js';
import type { CompatListenerConfig } from './config.js';
import { COMPAT_ADAPTERS, type CompatAdapter } from './index.js';

const settingsOf = (corral: Corral, a: CompatAdapter) => corral.config.compat[a.name] as CompatListenerConfig;

/** Refuses `auth: false` anywhere but on a loopback address or a unix socket. */
function checkAuthOff(a: CompatAdapter, settings: CompatListenerConfig, host: string | undefined): void {
  if (settings.auth || host === undefined || isLoopbackHost(host)) return;
  throw errors.config(`config key "compat.${a.name}.auth": false is only allowed on a loopback address or a unix socket (it listens on ${host})`);
}

async function registerAdapter(app: FastifyInstance, corral: Corral, proxy: Proxy, a: CompatAdapter, prefix: string): Promise<void> {
  await app.register(
    async (scope) => {
      if (a.ownTokens) {
        scope.addHook('onRoute', (route) => {
          route.config = { ...(route.config as object), corralAuth: false };
        });
      }
      await scope.register(a.plugin, { corral, proxy, settings: corral.config.compat[a.name], name: a.name });
    },
    { prefix },
  );
}

/** Registers the enabled adapters that have a `prefix` on the main app. */
export async function mountCompatAdapters(app: FastifyInstance, corral: Corral, proxy: Proxy): Promise<void> {
  for (const a of COMPAT_ADAPTERS) {
    const settings = settingsOf(corral, a);
    if (!settings.enabled || settings.prefix === undefined) continue;
    checkAuthOff(a, settings, corral.config.host);
    await registerAdapter(app, corral, proxy, a, settings.prefix);
  }
}

export interface CompatListeners {
  /** Base URL of each adapter that has its own listener, by adapter name. */
  urls: Record<string, string>;
  close(): Promise<void>;
}

/** Starts a listener for each enabled adapter without a `prefix`. */
export async function startCompatListeners(corral: Corral, proxy: Proxy): Promise<CompatListeners> {
  const apps: FastifyInstance[] = [];
  const urls: Record<string, string> = {};
  const close = async () => {
    await Promise.all(apps.map((app) => app.close()));
  };
  try {
    for (const a of COMPAT_ADAPTERS) {
      const settings = settingsOf(corral, a);
      if (!settings.enabled || settings.prefix !== undefined) continue;
      checkAuthOff(a, settings, settings.socket === undefined ? settings.host : undefined);
      const app = await buildListenerApp(corral, proxy, a);
      apps.push(app);
      if (settings.socket !== undefined) {
        urls[a.name] = `unix:${await listenOnSocket(app, settings.socket)}`;
      } else {
        await app.listen({ host: settings.host, port: settings.port });
        const { port } = app.server.address() as AddressInfo;
        const host = settings.host.includes(':') ? `[${settings.host}]` : settings.host;
        urls[a.name] = `${corral.config.tls ? 'https' : 'http'}://${host}:${port}`;
      }
      corral.log.info({ url: urls[a.name], adapter: a.name }, `${a.description} is listening`);
    }
  } catch (e) {
    await close();
    throw e;
  }
  return { urls, close };
}

/** Listens on a unix socket only its owner may connect to (a stale socket file is replaced). */
async function listenOnSocket(app: FastifyInstance, socket: string): Promise<string> {
  const file = path.resolve(socket);
  await rm(file, { force: true });
  await app.listen({ path: file });
  // Put the socket in a directory only corral's user can enter to close the moment before this.
  await chmod(file, 0o600);
  return file;
}

async function buildListenerApp(corral: Corral, proxy: Proxy, a: CompatAdapter): Promise<FastifyInstance> {
  const { config } = corral;
  const app = Fastify(serverOptions(corral)).withTypeProvider<TypeBoxTypeProvider>();
  registerErrorHandling(app);
  logOneLinePerRequest(app);
  await app.register(cookie);
  await app.register(formbody, { bodyLimit: config.bodyLimitBytes });
  await app.register(websocket, { options: { maxPayload: config.bodyLimitBytes } });
  await app.register(authPlugin, { corral });
  await app.register(securityHeadersHook, { tls: !!config.tls });
  await registerAdapter(app, corral, proxy, a, '');
  return app as unknown as FastifyInstance;
}
