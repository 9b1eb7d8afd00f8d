/**
 * The server's config from `corral serve`/`corral config` flags over the config file and
 * CORRAL_* variables. Loaded only by those commands' actions: it pulls in every config schema.
 */
import { COMPAT_ADAPTER_NAMES } from '../compat/config.js';
import { loadConfig, type Config } from '../core/config.js';

export interface ServerFlags {
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
