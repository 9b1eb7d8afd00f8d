/**
 * `auth.passkeys.require`: a login session of a user who must use a passkey, begun with a
 * password, may only do what registering a passkey takes — say who it is, manage passkeys,
 * log out, load the dashboard — until it registers one (which makes it a full session).
 * Everything else answers 403 `passkey_required`. An allow-list, so a route added later is
 * closed to such sessions by default. Tokens are not concerned: they are made from a session.
 */
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Corral } from '../core/corral.js';
import { errors } from '../core/errors.js';

const ENROLMENT_ROUTES: readonly RegExp[] = [
  /^GET \/api\/v1\/me$/,
  /^(GET|POST|PATCH|DELETE) \/api\/v1\/passkeys(\/.*)?$/,
  /^POST \/api\/v1\/logout$/,
  /^POST \/logout$/,
  /^GET \/login$/,
  /^GET \/ui(\/.*)?$/,
];

export const passkeyGate = fp(async (app: FastifyInstance, opts: { corral: Corral }) => {
  const { passkeys } = opts.corral.accounts;
  const { require, requireGroups } = opts.corral.config.auth.passkeys;
  if (require === 'off' && !requireGroups.length) return;
  app.addHook('onRequest', async (request) => {
    const p = request.principal;
    if (p?.via.kind !== 'session') return;
    const route = `${request.method} ${request.url.split('?')[0]}`;
    if (ENROLMENT_ROUTES.some((r) => r.test(route))) return;
    if (await passkeys.sessionIsFull(p.user, p.via.sessionHash)) return;
    throw errors.passkeyRequired('this account must sign in with a passkey: register one on your account page (#/account) first');
  });
});
