/**
 * `corral serve`: opens the core, builds the HTTP app, listens, and shuts down cleanly on
 * SIGINT/SIGTERM (stop accepting, finish in-flight requests, stop workloads, close the store).
 */
import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import type { Config } from './core/config.js';
import { Corral } from './core/corral.js';
import { errors } from './core/errors.js';
import { createLogger } from './core/logger.js';
import { buildApp } from './http/app.js';
import { afterListen, checkRoleConfig, listenOptions } from './roles/index.js';
import { startCompatListeners, type CompatListeners } from './compat/index.js';

/** How long shutdown waits for requests in flight before cutting their connections. */
const SHUTDOWN_GRACE_MS = 10_000;

export interface RunningServer {
  corral: Corral;
  app: FastifyInstance;
  url: string;
  /** Base URL of each compat adapter on its own listener (src/compat), by adapter name. */
  compat: Record<string, string>;
  close(): Promise<void>;
}

export async function startServer(config: Config): Promise<RunningServer> {
  const log = createLogger(config.logLevel);
  checkRoleConfig(config);
  const corral = await Corral.open(config, log);
  let app: FastifyInstance;
  let compat: CompatListeners;
  try {
    app = await buildApp(corral);
    await app.listen(await listenOptions(config)).catch((e: unknown) => {
      throw listenError(e as NodeJS.ErrnoException, config);
    });
    compat = await startCompatListeners(corral, app.proxy).catch(async (e: unknown) => {
      await app.close();
      throw e;
    });
  } catch (e) {
    await corral.close();
    throw e;
  }
  const scheme = config.tls ? 'https' : 'http';
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = (await afterListen(config)) ?? `${scheme}://${host}:${(app.server.address() as AddressInfo).port}`;
  log.info({ url, data: config.data }, 'corral is listening');

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      // Requests in flight get a grace period; a stream that never ends must not hold shutdown.
      const force = setTimeout(() => app.server.closeAllConnections(), SHUTDOWN_GRACE_MS);
      await compat.close();
      await app.close();
      clearTimeout(force);
      await corral.close();
    })());
  return { corral, app, url, compat: compat.urls, close };
}

/** A failed listen, said so that the user knows what to change (`corral serve` prints the message). */
function listenError(e: NodeJS.ErrnoException & { port?: number }, config: Config): Error {
  if (config.cluster.socket) return e; // a unix socket: listenOptions already says what is wrong
  const port = e.port ?? config.port;
  switch (e.code) {
    case 'EADDRINUSE':
      return errors.cannotListen(`port ${port} is in use: choose another with --port`);
    case 'EACCES':
      return errors.cannotListen(`port ${port} needs privileges this user lacks: choose one above 1023 with --port`);
    case 'EADDRNOTAVAIL':
      return errors.cannotListen(`${config.host} is not an address of this machine: choose another with --host`);
    default:
      return e;
  }
}

/** Runs until SIGINT or SIGTERM, then shuts down and exits 0. */
export async function serveForever(config: Config): Promise<void> {
  const server = await startServer(config);
  const stop = (signal: string) => {
    server.corral.log.info({ signal }, 'shutting down');
    server.close().then(
      () => process.exit(0),
      (e: unknown) => {
        server.corral.log.error({ err: e }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}
