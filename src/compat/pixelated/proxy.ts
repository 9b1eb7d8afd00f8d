/**
 * pixelated-dispatcher's user-facing proxy (see docs/compat.md): `/auth/login` checks the
 * password, starts the user's agent, waits until it answers and starts a session;
 * `/auth/logout` ends it (and closes its WebSockets). Every other path is forwarded, HTTP
 * and WebSocket, to the user's agent through corral's proxy (src/proxy): the same pooled
 * forwarding, header hygiene and session checks as `/i/{owner}/{instance}/`.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { SESSION_COOKIE } from '../../core/accounts/index.js';
import { errors, isCorralError } from '../../core/errors.js';
import type { InstanceState } from '../../core/instances/index.js';
import { ACTIVE_STATES } from '../../core/instances/states.js';
import { safeNext } from '../../http/routes/login.js';
import { isSameOriginRequest } from '../../http/same-origin.js';
import { clearSessionCookie, setSessionCookie } from '../../http/session-cookie.js';
import { presentedCredential } from '../../proxy/identity.js';
import { answers, loginFormPage, rejectUpgrade, sendAnswer } from '../../proxy/pages.js';
import type { Proxy } from '../../proxy/proxy.js';
import { securityHeaders } from '../../proxy/headers.js';
import type { CompatPluginOptions } from '../index.js';
import { PixelatedAgents } from './agents.js';

const LoginForm = Type.Object(
  {
    username: Type.String({ maxLength: 64 }),
    password: Type.String({ maxLength: 1024 }),
    next: Type.Optional(Type.String({ maxLength: 4096 })),
  },
  { additionalProperties: false },
);
const NextQuery = Type.Object({ next: Type.Optional(Type.String({ maxLength: 4096 })) });

export const pixelatedProxy: FastifyPluginAsyncTypebox<CompatPluginOptions<'pixelatedProxy'>> = async (app, { corral, proxy }) => {
  const { accounts, config } = corral;
  const agents = new PixelatedAgents(corral);
  const prefix = app.prefix;
  const loginPath = `${prefix}/auth/login`;
  interceptAgentTraffic(app.server, proxy, corral, prefix);

  const renderLogin = (reply: FastifyReply, next: string, error?: string, status = 200) =>
    reply.code(status).header('cache-control', 'no-store').type('text/html; charset=utf-8').send(loginPage(loginPath, next, error));

  app.get('/auth/login', { schema: { hide: true, querystring: NextQuery } }, async (request, reply) =>
    renderLogin(reply, safeNext(request.query.next ?? `${prefix}/`)),
  );

  app.post('/auth/login', { schema: { hide: true, body: LoginForm }, config: { csrf: false } }, async (request, reply) => {
    const next = safeNext(request.body.next ?? `${prefix}/`);
    // Login CSRF: a browser posting from another site says so in Origin.
    if (!isSameOriginRequest(request, config.publicUrl)) return renderLogin(reply, next, 'This form must be sent from this site.', 403);
    let user;
    try {
      user = await accounts.users.verifyLogin(request.body.username, request.body.password, request.ip);
      // auth.passkeys.require holds here too; this old form has no way to register or use a
      // passkey, so a user it applies to is sent to corral's own sign-in.
      const { enrolmentOnly } = await accounts.passkeys.passwordSignIn(user);
      if (enrolmentOnly) throw errors.passkeyRequired('this account needs a passkey: register one on corral\'s account page (sign in at /login), then sign in there');
    } catch (e) {
      if (!isCorralError(e)) throw e;
      if (e.status === 429) void reply.header('retry-after', e.headers['retry-after'] ?? '60');
      // As corral's own form: a refusal or a directory that is down says why; a wrong password no more than that.
      return renderLogin(reply, next, e.status === 401 ? 'Invalid credentials' : e.message, e.status);
    }
    try {
      const credentials = config.compat.pixelatedAgent.credentialsOnStdin
        ? `${JSON.stringify({ user: user.name, password: request.body.password })}\n`
        : undefined;
      await agents.startAndWait(user, credentials);
    } catch (e) {
      if (!isCorralError(e)) throw e;
      request.log.warn({ err: e, user: user.name }, 'pixelated agent did not start');
      return renderLogin(reply, next, 'Your agent could not be started; please try again later.', 503);
    }
    const { cookieValue } = await accounts.sessions.create(user);
    setSessionCookie(reply, config, cookieValue);
    return reply.header('cache-control', 'no-store').redirect(next, 302);
  });

  const logout = async (request: FastifyRequest, reply: FastifyReply) => {
    const p = request.principal;
    if (p?.via.kind === 'session') {
      await accounts.sessions.destroy(p.via.sessionHash);
      const value = request.cookies[SESSION_COOKIE];
      if (value) proxy.revoke({ kind: 'session', value, from: 'cookie' });
      if (config.compat.pixelatedAgent.stopOnLogout) await agents.stop(p.user);
    }
    clearSessionCookie(reply, config);
    return reply.header('cache-control', 'no-store').redirect(loginPath, 302);
  };
  // The old proxy logged out on GET too; a session cookie needs no CSRF token to end itself.
  app.get('/auth/logout', { schema: { hide: true } }, logout);
  app.post('/auth/logout', { schema: { hide: true }, config: { csrf: false } }, logout);
};

/**
 * Takes every request and upgrade under `prefix`, except `/auth/…`, off the server before
 * fastify and hands it to the proxy as a request for the user's default instance.
 */
function interceptAgentTraffic(server: Server, proxy: Proxy, corral: CompatPluginOptions['corral'], prefix: string): void {
  const auth = `${prefix}/auth/`;
  const mine = (url: string) => (prefix === '' || url === prefix || url.startsWith(`${prefix}/`) || url.startsWith(`${prefix}?`)) && !url.startsWith(auth);
  const tls = !!corral.config.tls;

  /** The route to the caller's running agent, or `login` (which starts it). */
  const routeFor = async (req: IncomingMessage) => {
    const url = req.url ?? '/';
    const credential = presentedCredential(req, url);
    const principal = credential && (await proxy.identity.principal(credential));
    if (!principal) return { kind: 'login' as const };
    const agent = await corral.store.proxy.defaultFor(principal.user.id);
    if (!agent) return { kind: 'login' as const };
    // A stopped agent (stopped by the manager, or at another logout) is started by logging in.
    const { target } = await proxy.lookup(agent.ownerName, agent.instanceName);
    if (!target || !ACTIVE_STATES.has(target.state as InstanceState)) return { kind: 'login' as const };
    const rest = url.slice(prefix.length);
    const upstreamPath = rest.startsWith('/') ? rest : `/${rest}`;
    return { kind: 'forward' as const, route: { owner: agent.ownerName, instance: agent.instanceName, port: undefined, prefix, upstreamPath } };
  };

  const onRequest = async (req: IncomingMessage, res: ServerResponse) => {
    try {
      const r = await routeFor(req);
      if (r.kind === 'forward') return await proxy.handle(req, res, r.route);
      if (String(req.headers['x-requested-with']).toLowerCase() === 'xmlhttprequest') return sendAnswer(req, res, answers.unauthenticated(), tls);
      res.writeHead(302, {
        ...securityHeaders(tls),
        location: `${prefix}/auth/login?next=${encodeURIComponent(req.url ?? '/')}`,
        'cache-control': 'no-store',
      });
      res.end();
    } catch (e) {
      corral.log.error({ err: e }, 'pixelated proxy request failed');
      sendAnswer(req, res, answers.badGateway('your agent'), tls);
    }
  };

  const onUpgrade = async (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    try {
      const r = await routeFor(req);
      if (r.kind === 'forward') return await proxy.upgrade(req, socket, head, r.route);
      rejectUpgrade(socket, 401, 'Unauthorized');
    } catch (e) {
      corral.log.error({ err: e }, 'pixelated proxy upgrade failed');
      rejectUpgrade(socket, 502, 'Bad Gateway');
    }
  };

  const emit = server.emit.bind(server) as (event: string, ...args: unknown[]) => boolean;
  server.emit = ((event: string, ...args: unknown[]) => {
    if (event === 'request' || event === 'upgrade') {
      const req = args[0] as IncomingMessage;
      if (mine(req.url ?? '/')) {
        if (event === 'request') void onRequest(req, args[1] as ServerResponse);
        else void onUpgrade(req, args[1] as Duplex, args[2] as Buffer);
        return true;
      }
    }
    return emit(event, ...args);
  }) as typeof server.emit;
}

function loginPage(action: string, next: string, error?: string): string {
  return loginFormPage({ title: 'Pixelated · log in', heading: 'Log in', action, userField: 'username', hidden: { next }, error });
}
