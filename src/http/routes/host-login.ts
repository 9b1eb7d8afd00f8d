/**
 * `GET /host-login?host={label}&next={path}`: the main origin's half of logging a browser in
 * to an instance host (src/proxy/host-login.ts). An instance host without its cookie sends
 * the browser here; after the login form if needed, a user who may reach the instance gets
 * a one-time code and is sent back to `/_corral/callback` on that host, which sets the
 * host's own cookie. Anyone else gets 404, with no code. The redirect goes only to the
 * instance host named by a valid label, under the apps domain: never off-site.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { errors } from '../../core/errors.js';
import { CALLBACK_PATH } from '../../proxy/host-login.js';
import { parseHostLabel } from '../../proxy/origins.js';
import { mayPass, type Proxy } from '../../proxy/proxy.js';
import { safeNext } from './login.js';

const Query = Type.Object(
  {
    host: Type.String({ minLength: 1, maxLength: 63, description: 'the instance host label, {instance}--{owner}[--{port}]' }),
    next: Type.Optional(Type.String({ maxLength: 4096, description: 'a path on that host' })),
  },
  { additionalProperties: false },
);

export const hostLoginRoutes: FastifyPluginAsyncTypebox<{ proxy: Proxy }> = async (app, { proxy }) => {
  app.get('/host-login', { schema: { hide: true, querystring: Query } }, async (request, reply) => {
    void reply.header('cache-control', 'no-store').header('referrer-policy', 'no-referrer');
    const target = parseHostLabel(request.query.host);
    if (!target) throw errors.notFound(`"${request.query.host}" is not an instance host name ({instance}--{owner}[--{port}])`);
    // Only a top-level navigation gets a code: a script on some page cannot fetch one for itself.
    const mode = request.headers['sec-fetch-mode'];
    if (mode !== undefined && mode !== 'navigate') throw errors.forbidden('open this address in the browser, not from a script');
    const p = request.principal;
    if (!p || p.via.kind !== 'session') return reply.redirect(`/login?next=${encodeURIComponent(request.url)}`, 302);
    const { target: instance, settings } = await proxy.lookup(target.owner, target.instance);
    if (!instance || !mayPass(p, instance, settings)) throw errors.instanceNotFound(`${target.owner}/${target.instance}`);
    // A path on the instance host; anything else (another host, //x, \x) lands on its root.
    const next = safeNext(request.query.next);
    const code = await proxy.hostLogin.mintCode(p, target.label, next);
    return reply.redirect(`${proxy.origins.appOrigin(target.label)}${CALLBACK_PATH}?code=${code}`, 302);
  });
};
