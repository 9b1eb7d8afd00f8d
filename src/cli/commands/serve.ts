/** `corral serve` and `corral config`: run the server, show its effective config. */
import type { Command } from 'commander';
import { loadConfig, maskSecrets, type Config } from '../../core/config.js';
import { COMPAT_ADAPTER_NAMES } from '../../compat/config.js';
import { runAction } from '../output.js';

interface ServerFlags {
  config?: string;
  data?: string;
  host?: string;
  port?: string;
  tlsCert?: string;
  tlsKey?: string;
  logLevel?: string;
  role?: string;
  compat?: boolean;
}

function withServerFlags(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', 'config file (YAML or JSON)')
    .option('-d, --data <dir>', 'data directory (default ./corral-data)')
    .option('--host <host>', 'address to listen on (default 127.0.0.1)')
    .option('-p, --port <port>', 'port to listen on (default 8080)')
    .option('--tls-cert <file>', 'TLS certificate (PEM): serve HTTPS')
    .option('--tls-key <file>', 'TLS private key (PEM)')
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent')
    .option('--role <role>', 'all (default), proxy (login, dashboard, proxy; unprivileged) or manager (API, drivers)')
    .option('--compat', 'also serve the older tools\' APIs (smartmob-agent :8081, golem-herder :8082, pixelated proxy :8083 and manager :8084)');
}

export function configFromFlags(flags: ServerFlags): Config {
  const tls = flags.tlsCert || flags.tlsKey ? { cert: flags.tlsCert, key: flags.tlsKey } : undefined;
  return loadConfig({
    file: flags.config,
    flags: {
      data: flags.data,
      host: flags.host,
      port: flags.port === undefined ? undefined : Number(flags.port),
      logLevel: flags.logLevel,
      role: flags.role,
      tls,
      compat: flags.compat ? Object.fromEntries(COMPAT_ADAPTER_NAMES.map((n) => [n, { enabled: true }])) : undefined,
    },
  });
}

export function registerServeCommands(program: Command): void {
  withServerFlags(program.command('serve').description('start the corral server')).action(
    runAction.wrap(async (flags: ServerFlags) => {
      const config = configFromFlags(flags);
      // Loaded only here: client commands start faster without the server's modules.
      const { serveForever } = await import('../../server.js');
      await serveForever(config);
    }),
  );
  withServerFlags(program.command('config').description('print the effective config (secrets masked)')).action(
    runAction.wrap(async (flags: ServerFlags) => {
      process.stdout.write(`${JSON.stringify(maskSecrets(configFromFlags(flags)), null, 2)}\n`);
    }),
  );
}
