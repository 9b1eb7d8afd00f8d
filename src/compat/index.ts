/**
 * The older tools' wire APIs (smartmob-agent, golem-herder, pixelated-dispatcher), each a
 * thin translation over the same core calls the native API makes (corral.instances,
 * corral.jobs, corral.accounts, the proxy): no second implementation of anything.
 *
 * HOW AN ADAPTER REGISTERS
 *
 *  1. Write a fastify plugin, `FastifyPluginAsyncTypebox<CompatPluginOptions>`, in
 *     src/compat/<tool>/. It gets `{ corral, proxy, settings, name }`: the core, the
 *     main listener's Proxy (src/proxy) and the adapter's own block of config
 *     (`config.compat.<name>`). Declare routes with their paths as the old tool had them
 *     (`/create-process`, `/golem/v1/ls`…): the infrastructure mounts the plugin at `/` of
 *     the adapter's own listener, or under `compat.<name>.prefix` on the main listener.
 *  2. Add one entry to COMPAT_ADAPTERS below: `{ name, description, plugin }`, with
 *     `ownTokens: true` when the old API has tokens of its own (golem-herder's JWTs): then
 *     corral's auth plugin leaves the `Authorization` header of its routes alone.
 *  3. Its config block is in src/compat/config.ts (`COMPAT_ADAPTER_NAMES`, default port in
 *     `COMPAT_DEFAULT_PORTS`, extra settings as the second argument of `adapterConfig`).
 *
 * What every adapter gets for free, on its own listener as on the main one: corral's error
 * handling (`{"error":{"code","message"}}`, errors only from src/core/errors.ts), schema
 * validation, @fastify/cookie, @fastify/formbody, @fastify/websocket, corral's auth plugin
 * (`request.principal` from a token or session) and one log line per request.
 *
 * Auth: `compatUser(corral, request, settings, scope)` (src/compat/auth.ts) gives the user a
 * request acts for: with `auth` on (the default) the caller's token must hold `scope`; with
 * it off (allowed only on loopback or a unix socket) requests act as a configured user.
 * Bodies: `acceptJsonOfAnyType(app, limit)` (src/compat/json-body.ts) for old clients that
 * posted JSON without a JSON content type. Docs: a section in docs/compat.md.
 *
 * Listening: `corral serve --compat` turns every adapter on. Each listens on its own port
 * on 127.0.0.1 (COMPAT_DEFAULT_PORTS: 8081 smartmob-agent, 8082 golem-herder, 8083 the
 * pixelated-dispatcher proxy, 8084 its manager) unless given a `prefix` on the main
 * listener or a unix `socket`. `startServer` reports each listener's URL in
 * `RunningServer.compat`. Migrations of compat adapters take the 600 range.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Corral } from '../core/corral.js';
import type { Proxy } from '../proxy/proxy.js';
import type { CompatAdapterName, CompatConfig } from './config.js';
import { pixelatedManager } from './pixelated/manager.js';
import { pixelatedProxy } from './pixelated/proxy.js';
import { smartmobAgent } from './smartmob/routes.js';
import { golemHerder } from './golem-herder/plugin.js';

export interface CompatPluginOptions<Name extends CompatAdapterName = CompatAdapterName> {
  corral: Corral;
  /** The main listener's proxy: pooled upstream connections, sessions, WebSocket tunnels. */
  proxy: Proxy;
  settings: CompatConfig[Name];
  name: Name;
}

export interface CompatAdapter<Name extends CompatAdapterName = CompatAdapterName> {
  name: Name;
  /** One line for logs and docs: which old tool this speaks for. */
  description: string;
  plugin: FastifyPluginAsyncTypebox<CompatPluginOptions<Name>>;
  /** The old API has tokens of its own: corral's auth plugin skips its routes. */
  ownTokens?: boolean;
}

const adapter = <Name extends CompatAdapterName>(a: CompatAdapter<Name>): CompatAdapter => a as unknown as CompatAdapter;

/** Every adapter corral has: one entry each. */
export const COMPAT_ADAPTERS: CompatAdapter[] = [
  adapter({ name: 'smartmobAgent', description: 'smartmob-agent process API', plugin: smartmobAgent }),
  adapter({ name: 'golemHerder', description: 'golem-herder (tokens, daemons, minions, golems)', plugin: golemHerder }),
  adapter({ name: 'pixelatedProxy', description: 'pixelated-dispatcher proxy (login, forwarding to the agent)', plugin: pixelatedProxy }),
  adapter({ name: 'pixelatedManager', description: 'pixelated-dispatcher manager API', plugin: pixelatedManager }),
];

export { mountCompatAdapters, startCompatListeners, type CompatListeners } from './listeners.js';
