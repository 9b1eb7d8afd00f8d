/**
 * Split roles (`corral serve --role proxy|manager|all`). `all` runs everything in one
 * process. `manager` adds the internal API the proxies call. `proxy` opens only the store
 * and accounts (no jobs, instances, drivers: see Corral.open), serves the login, dashboard
 * and instance proxy itself, looks instances up on the manager, and passes `/api/…` to it.
 */
import { existsSync } from 'node:fs';
import { chmod, unlink } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import type { FastifyInstance, FastifyListenOptions } from 'fastify';
import type { Config } from '../core/config.js';
import type { Corral } from '../core/corral.js';
import { errors } from '../core/errors.js';
import type { ProxyTargets } from '../proxy/targets.js';
import { ApiForwarder } from './api-forwarder.js';
import { internalRoutes, INTERNAL_PREFIX } from './internal-api.js';
import { INTERNAL_HEADER, secretMatches } from './internal-secret.js';
import { ManagerClient, managerTargets, parseManagerUrl } from './manager-client.js';

/** Refuses configurations a role cannot work with, before anything is opened. */
export function checkRoleConfig(config: Config): void {
  const { managerUrl, internalSecret } = config.cluster;
  if (config.role !== 'proxy') return;
  if (!managerUrl) throw errors.config('role proxy needs cluster.managerUrl (CORRAL_CLUSTER__MANAGER_URL): where the manager listens');
  if (!managerUrl.startsWith('unix:') && !internalSecret) {
    throw errors.config('role proxy with a network managerUrl needs cluster.internalSecret, the same as the manager\'s');
  }
  // Tokens are verified with the manager's key; a fresh one made here would reject them all.
  if (!existsSync(path.join(config.data, 'signing-key.json'))) {
    throw errors.config(`role proxy needs the manager's signing-key.json in its data directory ${config.data} (copy it, mode 0600)`);
  }
}

/**
 * Sets up what the role needs on the HTTP server. Called before the proxy is attached, so
 * instance routes (the proxy) take precedence over the API forwarding; returns the targets
 * the proxy should use instead of the local instances core, if any.
 */
export function setUpRole(app: FastifyInstance, corral: Corral): { targets?: ProxyTargets } {
  const { config } = corral;
  if (config.role === 'manager') trustProxiedAddress(app, config.cluster.internalSecret);
  if (config.role !== 'proxy') return {};
  const timeouts = { connectTimeoutMs: config.proxy.connectTimeoutSeconds * 1000, answerTimeoutMs: config.cluster.managerTimeoutSeconds * 1000 };
  const client = new ManagerClient(parseManagerUrl(config.cluster.managerUrl!), config.cluster.internalSecret, {
    connections: config.proxy.maxConnectionsPerUpstream,
    ...timeouts,
  });
  const forwarder = new ApiForwarder(client, {
    secret: config.cluster.internalSecret ?? '',
    tls: !!config.tls,
    ...timeouts,
    log: corral.log,
  });
  forwarder.intercept(app.server);
  app.addHook('preClose', async () => forwarder.closeEverything());
  app.addHook('onClose', async () => client.close());
  return { targets: managerTargets(client, corral.log) };
}

/**
 * API requests a proxy passes on carry the internal secret (an empty one over the unix
 * socket); for those, and only those, the client address is the one the proxy saw, so
 * logs and the per-address login lock-out see the real client.
 */
function trustProxiedAddress(app: FastifyInstance, secret: string | undefined): void {
  app.addHook('onRequest', async (request) => {
    const sent = request.headers[INTERNAL_HEADER];
    if (sent === undefined) return;
    const fromProxy = secret ? secretMatches(sent, secret) : request.socket.remoteAddress === undefined;
    const forwarded = request.headers['x-forwarded-for'];
    if (!fromProxy || typeof forwarded !== 'string' || !forwarded) return;
    Object.defineProperty(request, 'ip', { value: forwarded.split(',')[0]!.trim() });
  });
}

/** The manager's internal API (registered after the error handling, so errors get their shape). */
export async function registerRoleRoutes(app: FastifyInstance, corral: Corral): Promise<void> {
  if (corral.config.role === 'manager') await app.register(internalRoutes, { corral, prefix: INTERNAL_PREFIX });
}

/**
 * Where to listen: the unix socket when one is configured (a stale socket file left by a
 * dead server is removed; a live server's is not), else host and port.
 */
export async function listenOptions(config: Config): Promise<FastifyListenOptions> {
  const socket = config.cluster.socket;
  if (!socket) return { host: config.host, port: config.port };
  if (existsSync(socket)) {
    const live = await new Promise<boolean>((resolve) => {
      const c = net.connect({ path: socket }, () => (c.destroy(), resolve(true)));
      c.once('error', () => resolve(false));
    });
    if (live) throw errors.config(`another server listens on ${socket}`);
    await unlink(socket);
  }
  return { path: socket };
}

/**
 * After listening on a unix socket: anyone who can reach the file may connect, so guard it
 * with its directory's permissions (e.g. root:corral-proxy 0750).
 */
export async function afterListen(config: Config): Promise<string | undefined> {
  if (!config.cluster.socket) return undefined;
  await chmod(config.cluster.socket, 0o666);
  return `unix:${config.cluster.socket}`;
}
