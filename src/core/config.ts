/**
 * The one config loader: a file (YAML or JSON), then CORRAL_* environment variables, then
 * command-line flags, each overriding the one before, validated by one schema. Unknown keys
 * and bad values stop startup with a message that names the key.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Type, type Static, type TSchema, TypeGuard } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import YAML from 'yaml';
import { errors } from './errors.js';
import { nearestKey } from './nearest-key.js';
import { InstancesConfigSchema } from './instances/config.js';
import { AppsConfigSchema } from './apps/config.js';
import { JobsConfigSchema } from './jobs/config.js';
import { CreditsConfigSchema, QuotasSchema } from './credits/config.js';
import { DriversConfigSchema } from './drivers/config.js';
import { ProxyConfigSchema } from '../proxy/config.js';
import { SourcesConfigSchema } from './sources/config.js';
import { ClusterConfigSchema, DatabaseUrlSchema, RoleSchema } from './cluster/config.js';
import { RelayConfigSchema } from './relay/config.js';
import { CompatConfigSchema } from '../compat/config.js';
import { OidcProviderConfigSchema } from './accounts/oidc-config.js';
import { LdapConfigSchema } from './accounts/ldap-config.js';
import { PasskeysConfigSchema } from './accounts/passkeys-config.js';

const Seconds = (def: number, description: string) => Type.Integer({ minimum: 0, default: def, description });

export const ConfigSchema = Type.Object(
  {
    host: Type.String({ default: '127.0.0.1', description: 'address to listen on' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
    data: Type.String({ default: './corral-data', description: 'data directory: database, key, logs, sources' }),
    databaseUrl: DatabaseUrlSchema,
    role: RoleSchema,
    publicUrl: Type.Optional(Type.String({ description: 'URL users reach corral at, for links' })),
    logLevel: Type.Union(
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
      { default: 'info' },
    ),
    tls: Type.Optional(
      Type.Object({ cert: Type.String(), key: Type.String() }, { additionalProperties: false }),
    ),
    adminPassword: Type.Optional(Type.String({ minLength: 8, secret: true, description: 'password of the first admin' })),
    bodyLimitBytes: Type.Integer({ minimum: 1024, default: 1024 * 1024 }),
    auth: Type.Object(
      {
        sessionTtlSeconds: Seconds(7 * 24 * 3600, 'idle lifetime of a login session'),
        tokenTtlSeconds: Seconds(90 * 24 * 3600, 'default lifetime of a new token'),
        loginMaxFailures: Type.Integer({ minimum: 1, default: 5, description: 'failed logins of one user from one address before a lock-out' }),
        loginMaxFailuresPerAddress: Type.Optional(
          Type.Integer({ minimum: 1, description: 'failed logins from one address, whatever the user, before a lock-out (default 4 × loginMaxFailures)' }),
        ),
        loginMaxFailuresPerUser: Type.Optional(
          Type.Integer({ minimum: 1, description: 'failed logins of one user, whatever the address, before a lock-out (default 4 × loginMaxFailures)' }),
        ),
        loginLockSeconds: Seconds(60, 'first lock-out after too many failed logins; doubles each time'),
        localPasswords: Type.Boolean({ default: true, description: 'false: no local password sign-in; users sign in through auth.oidc providers or auth.ldap' }),
        oidc: Type.Array(OidcProviderConfigSchema, { default: [], description: 'OpenID Connect identity providers (docs/sign-in.md)' }),
        ldap: Type.Optional(LdapConfigSchema),
        passkeys: PasskeysConfigSchema,
      },
      { additionalProperties: false, default: {} },
    ),
    jobs: JobsConfigSchema,
    instances: InstancesConfigSchema,
    apps: AppsConfigSchema,
    drivers: DriversConfigSchema,
    proxy: ProxyConfigSchema,
    sources: SourcesConfigSchema,
    cluster: ClusterConfigSchema,
    credits: CreditsConfigSchema,
    quotas: QuotasSchema,
    relay: RelayConfigSchema,
    compat: CompatConfigSchema,
  },
  { additionalProperties: false },
);

export type Config = Static<typeof ConfigSchema>;

/** Keys that hold secrets: masked by `corral config` and in logs. */
export const SECRET_KEYS = new Set(['adminPassword', 'databaseUrl', 'internalSecret', 'tokenPassword', 'bindPassword']);

export interface ConfigSources {
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  flags?: Record<string, unknown>;
}

/** Environment variables with the CORRAL_ prefix that are not config keys. */
const NON_CONFIG_ENV = new Set(['CORRAL_CONFIG', 'CORRAL_URL', 'CORRAL_TOKEN', 'CORRAL_INSECURE']);

export function loadConfig(sources: ConfigSources = {}): Config {
  const env = sources.env ?? process.env;
  const file = sources.file ?? env.CORRAL_CONFIG;
  let merged: Record<string, unknown> = {};
  if (file) merged = deepMerge(merged, readConfigFile(file));
  merged = deepMerge(merged, fromEnv(env));
  merged = deepMerge(merged, sources.flags ?? {});
  return validate(merged);
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw errors.config(`cannot read config file ${file}: ${(e as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = YAML.parse(text);
  } catch (e) {
    throw errors.config(`config file ${file} is not valid YAML: ${(e as Error).message}`);
  }
  if (parsed == null) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw errors.config(`config file ${file} must hold a mapping`);
  return parsed as Record<string, unknown>;
}

/** CORRAL_AUTH__SESSION_TTL_SECONDS=60 → { auth: { sessionTtlSeconds: 60 } }. */
function fromEnv(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('CORRAL_') || NON_CONFIG_ENV.has(name) || raw === undefined) continue;
    const keys = name.slice('CORRAL_'.length).split('__').map(camelCase);
    let node = out;
    for (const key of keys.slice(0, -1)) node = (node[key] ??= {}) as Record<string, unknown>;
    node[keys[keys.length - 1]!] = parseScalar(raw);
  }
  return out;
}

const camelCase = (s: string) => s.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

function parseScalar(raw: string): unknown {
  if (/^-?\d+(\.\d+)?$/.test(raw)) return Number(raw);
  if (raw === 'true' || raw === 'false') return raw === 'true';
  if (/^[[{]/.test(raw)) {
    try {
      return JSON.parse(raw);
    } catch {
      /* a plain string that happens to start with a bracket */
    }
  }
  return raw;
}

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) {
    if (v === undefined) continue;
    const prev = out[k];
    out[k] = isPlainObject(prev) && isPlainObject(v) ? deepMerge(prev, v) : v;
  }
  return out;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function validate(input: Record<string, unknown>): Config {
  const unknown = unknownKeys(ConfigSchema, input, '');
  if (unknown.length) {
    const known = keyPaths(ConfigSchema, '');
    const named = unknown.map((k) => {
      const near = nearestKey(k, known);
      return `"${k}"${near ? ` (did you mean "${near}"?)` : ''}`;
    });
    throw errors.config(`unknown config key ${named.join(', ')}`);
  }
  const withDefaults = Value.Default(ConfigSchema, Value.Clone(input));
  const first = [...Value.Errors(ConfigSchema, withDefaults)][0];
  if (first) {
    const key = first.path.replace(/^\//, '').replaceAll('/', '.') || '(root)';
    // A secret's value is not repeated: the message lands in logs and terminals.
    const got = (first.schema as { secret?: boolean }).secret ? '(a secret, not shown)' : JSON.stringify(first.value);
    throw errors.config(`config key "${key}": ${first.message} (got ${got})`);
  }
  const config = withDefaults as Config;
  config.data = path.resolve(config.data);
  return config;
}

function unknownKeys(schema: TSchema, value: unknown, prefix: string): string[] {
  if (!TypeGuard.IsObject(schema) || !isPlainObject(value)) return [];
  const found: string[] = [];
  for (const [k, v] of Object.entries(value)) {
    const child = schema.properties[k];
    const key = prefix ? `${prefix}.${k}` : k;
    if (!child) found.push(key);
    else found.push(...unknownKeys(child, v, key));
  }
  return found;
}

/** Every key path the schema knows (`jobs`, `jobs.maxTimeoutSeconds`, …): what a mistyped key is compared with. */
function keyPaths(schema: TSchema, prefix: string): string[] {
  if (!TypeGuard.IsObject(schema)) return [];
  return Object.entries(schema.properties).flatMap(([k, child]) => {
    const key = prefix ? `${prefix}.${k}` : k;
    return [key, ...keyPaths(child, key)];
  });
}

/** The config as `corral config` prints it: secrets masked. */
export function maskSecrets(config: Config): Record<string, unknown> {
  return JSON.parse(
    JSON.stringify(config, (key, value) => (SECRET_KEYS.has(key) && value ? '********' : value)),
  ) as Record<string, unknown>;
}
