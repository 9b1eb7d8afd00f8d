/**
 * Config of the compatibility adapters (`compat.<name>` in corral's config). Schemas only,
 * so the CLI and the config loader can read it without loading any adapter.
 *
 * Every adapter has the same listener block: off unless `enabled` (or `corral serve
 * --compat`), on its own port on 127.0.0.1 (or a unix `socket`), or mounted under `prefix` on
 * the main listener instead. `auth: false` (no token needed) is only accepted on a loopback
 * address or a unix socket.
 */
import { Type, type Static, type TProperties } from '@sinclair/typebox';
import { GolemHerderSettings } from './golem-herder/config.js';
import { NulFreeString, SOURCE_URL } from '../core/instances/spec.js';

/** The adapters, in the order they are started; each is a key of `compat`. */
export const COMPAT_ADAPTER_NAMES = ['smartmobAgent', 'golemHerder', 'pixelatedProxy', 'pixelatedManager'] as const;
export type CompatAdapterName = (typeof COMPAT_ADAPTER_NAMES)[number];

/** Each adapter's own port when it is not mounted under a prefix (the main listener is 8080). */
export const COMPAT_DEFAULT_PORTS: Record<CompatAdapterName, number> = {
  smartmobAgent: 8081,
  golemHerder: 8082,
  pixelatedProxy: 8083,
  pixelatedManager: 8084,
};

const listenerFields = (port: number) => ({
  enabled: Type.Boolean({ default: false, description: 'serve this API (corral serve --compat turns every adapter on)' }),
  host: Type.String({ default: '127.0.0.1', description: 'address of its own listener' }),
  port: Type.Integer({ minimum: 0, maximum: 65535, default: port, description: 'port of its own listener' }),
  prefix: Type.Optional(
    Type.String({
      pattern: '^(/[A-Za-z0-9._~-]+)+$',
      description: 'mount under this path on the main listener instead of its own listener, e.g. /smartmob',
    }),
  ),
  socket: Type.Optional(
    Type.String({ pattern: '^/', description: 'listen on this unix socket (mode 0600) instead of host and port' }),
  ),
  auth: Type.Boolean({ default: true, description: 'require a corral token; false only on a loopback address or unix socket' }),
});

/** The listener block plus an adapter's own settings. */
const adapterConfig = <T extends TProperties>(name: CompatAdapterName, extra: T) =>
  Type.Object({ ...listenerFields(COMPAT_DEFAULT_PORTS[name]), ...extra }, { additionalProperties: false, default: {} });

export const SmartmobSettings = {
  runAs: Type.String({
    default: 'admin',
    pattern: '^[a-z0-9_.-]{1,64}$',
    description: 'with auth off: the user who owns the processes',
  }),
};

/** What each pixelated agent runs: one instance per user, created at its first start. */
export const PixelatedAgentConfigSchema = Type.Object(
  {
    instance: Type.String({ default: 'agent', pattern: '^[a-z0-9][a-z0-9-]{0,62}$', description: "name of each user's agent instance" }),
    shell: Type.Optional(NulFreeString({ minLength: 1, description: 'the agent command (sh -c); it listens on $PORT' })),
    command: Type.Optional(Type.Array(NulFreeString(), { minItems: 1, description: 'the agent argv; it listens on $PORT' })),
    sourceUrl: Type.Optional(Type.String({ pattern: SOURCE_URL, description: 'or: a Procfile app archive' })),
    process: Type.Optional(Type.String({ description: 'Procfile process type of sourceUrl (default web)' })),
    env: Type.Record(Type.String(), NulFreeString(), { default: {} }),
    readyTimeoutSeconds: Type.Integer({ minimum: 1, default: 60, description: 'how long login waits for the agent to answer' }),
    stopOnLogout: Type.Boolean({ default: false, description: "stop the user's agent when they log out" }),
    credentialsOnStdin: Type.Boolean({
      default: false,
      description: 'at login, write {"user","password"} as one JSON line to the agent\'s stdin (the old agents\' dispatcher mode)',
    }),
  },
  { additionalProperties: false, default: {} },
);
export type PixelatedAgentConfig = Static<typeof PixelatedAgentConfigSchema>;

export const CompatConfigSchema = Type.Object(
  {
    smartmobAgent: adapterConfig('smartmobAgent', SmartmobSettings),
    golemHerder: adapterConfig('golemHerder', GolemHerderSettings),
    pixelatedProxy: adapterConfig('pixelatedProxy', {}),
    pixelatedManager: adapterConfig('pixelatedManager', {}),
    pixelatedAgent: PixelatedAgentConfigSchema,
  },
  { additionalProperties: false, default: {} },
);
export type CompatConfig = Static<typeof CompatConfigSchema>;

const ListenerConfigSchema = Type.Object(listenerFields(0));
/** The listener block every adapter has. */
export type CompatListenerConfig = Static<typeof ListenerConfigSchema>;
