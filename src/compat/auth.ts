/**
 * Who a compat request acts for. The old tools had no accounts (smartmob-agent, the
 * pixelated manager): corral asks for a token unless the admin turned `auth` off for the
 * adapter, which is only allowed on a loopback address; then requests act as one user.
 */
import type { FastifyRequest } from 'fastify';
import { isIP } from 'node:net';
import type { Scope, User } from '../core/accounts/index.js';
import type { Corral } from '../core/corral.js';
import { requireScope } from '../http/auth.js';

/** 127.0.0.0/8, ::1 and localhost: the only hosts an adapter may serve without auth on. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  const mapped = /^::ffff:(127\.\d+\.\d+\.\d+)$/.exec(h);
  return !!mapped;
}

export interface CompatAuthSettings {
  auth: boolean;
  /** The user requests act for when auth is off (default: admin). */
  runAs?: string;
}

/**
 * The user a request acts for: the caller (holding `scope`) when auth is on; with auth off,
 * the caller if they sent a credential anyway, else `runAs`.
 */
export async function compatUser(corral: Corral, request: FastifyRequest, settings: CompatAuthSettings, scope: Scope): Promise<User> {
  if (settings.auth || request.principal) return requireScope(request, scope).user;
  return corral.accounts.users.get(settings.runAs ?? 'admin');
}
