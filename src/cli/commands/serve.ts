/**
 * `corral serve` and `corral config`: run the server, show its effective config. The server,
 * the config schemas and everything they import load inside the actions, never for other commands.
 */
import type { Command } from 'commander';
import type { ServerFlags } from '../server-config.js';
import { runAction } from '../output.js';

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

export function registerServeCommands(program: Command): void {
  withServerFlags(program.command('serve').description('start the corral server')).action(
    runAction.wrap(async (flags: ServerFlags) => {
      const { configFromFlags } = await import('../server-config.js');
      const config = configFromFlags(flags);
      const { serveForever } = await import('../../server.js');
      await serveForever(config);
    }),
  );
  withServerFlags(program.command('config').description('print the effective config (secrets masked)')).action(
    runAction.wrap(async (flags: ServerFlags) => {
      const [{ configFromFlags }, { maskSecrets }] = await Promise.all([import('../server-config.js'), import('../../core/config.js')]);
      process.stdout.write(`${JSON.stringify(maskSecrets(configFromFlags(flags)), null, 2)}\n`);
    }),
  );
}
