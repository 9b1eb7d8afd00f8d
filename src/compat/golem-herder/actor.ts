/**
 * Who a golem-herder request acts for. Daemons always need a token. Golems, minions and the
 * relay sockets had no auth in the old herder: with `auth` on (the default) corral wants a
 * token for them too; with it off (loopback only) a caller without one acts as `runAs`
 * (compatUser, src/compat/auth.ts).
 */
import type { FastifyRequest } from 'fastify';
import type { Corral } from '../../core/corral.js';
import { compatUser } from '../auth.js';
import type { CompatPluginOptions } from '../index.js';

export type GolemSettings = CompatPluginOptions<'golemHerder'>['settings'];

/** The relay owner of a socket: the caller's user id, or null for an anonymous caller (auth off). */
export async function relayOwner(corral: Corral, request: FastifyRequest, settings: GolemSettings): Promise<string | null> {
  if (!settings.auth && !request.principal) return null;
  return (await compatUser(corral, request, settings, 'instances:write')).id;
}
