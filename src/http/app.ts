/**
 * Builds the HTTP server: the API v1 routes, OpenAPI document and docs, health checks.
 * Thin by design: validate with the route's schema, call core, map errors.
 */
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import websocket from '@fastify/websocket';
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { readFileSync } from 'node:fs';
import type { Corral } from '../core/corral.js';
import { VERSION } from '../core/version.js';
import { authPlugin } from './auth.js';
import { clientErrorHandler, registerErrorHandling, replyWithError } from './errors.js';
import { redactUrl } from './redact.js';
import { healthRoutes } from './routes/health.js';
import { identityKeyRoutes } from './routes/identity-keys.js';
import { indexRoutes } from './routes/index.js';
import { instanceRoutes } from './routes/instances.js';
import { appRoutes } from './routes/apps.js';
import { jobRoutes } from './routes/jobs.js';
import { sessionRoutes } from './routes/session.js';
import { tokenRoutes } from './routes/tokens.js';
import { userRoutes } from './routes/users.js';
import { groupRoutes } from './routes/groups.js';
import { passkeyRoutes } from './routes/passkeys.js';
import { passkeyGate } from './passkey-gate.js';
import { usageRoutes } from './routes/usage.js';
import { statsRoutes } from './routes/stats.js';
import { metricsRoutes } from './routes/metrics.js';
import { attachProxy } from '../proxy/index.js';
import { registerRoleRoutes, setUpRole } from '../roles/index.js';
import { loginRoutes } from './routes/login.js';
import { hostLoginRoutes } from './routes/host-login.js';
import { proxySettingsRoutes } from './routes/proxy.js';
import { relayRoutes } from './routes/relay.js';
import { golemHerderAdminRoutes } from '../compat/golem-herder/admin-route.js';
import { securityHeadersHook, uiRoutes } from './routes/ui.js';
import { mountCompatAdapters } from '../compat/index.js';

export const API_PREFIX = '/api/v1';

/** The API's entry points, listed by `GET /api/v1`. */
const LINKS: Record<string, string> = {
  self: API_PREFIX,
  openapi: `${API_PREFIX}/openapi.json`,
  docs: `${API_PREFIX}/docs`,
  login: `${API_PREFIX}/login`,
  logout: `${API_PREFIX}/logout`,
  me: `${API_PREFIX}/me`,
  passkeys: `${API_PREFIX}/passkeys`,
  users: `${API_PREFIX}/users`,
  tokens: `${API_PREFIX}/tokens`,
  jobs: `${API_PREFIX}/jobs`,
  instances: `${API_PREFIX}/instances`,
  apps: `${API_PREFIX}/apps`,
  events: `${API_PREFIX}/events`,
  runtimes: `${API_PREFIX}/runtimes`,
  usage: `${API_PREFIX}/usage`,
  stats: `${API_PREFIX}/stats`,
  metrics: '/metrics',
  relay: `${API_PREFIX}/relay/{channel}`,
};

/** Fastify's options for every listener of this server (the main one and the compat adapters'). */
export function serverOptions(corral: Corral): FastifyServerOptions & { https?: { cert: Buffer; key: Buffer } } {
  const { config } = corral;
  const options: FastifyServerOptions & { https?: { cert: Buffer; key: Buffer } } = {
    loggerInstance: corral.log,
    // Fastify's own request/response lines are off: logOneLinePerRequest writes one, redacted.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.bodyLimitBytes,
    return503OnClosing: true,
    clientErrorHandler,
    // A path part over maxParamLength or a bad % escape never reaches a route's error handler.
    frameworkErrors: replyWithError,
    forceCloseConnections: 'idle',
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } },
  };
  if (config.tls) {
    options.https = { cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) };
  }
  return options;
}

export async function buildApp(corral: Corral): Promise<FastifyInstance> {
  const { config } = corral;
  const app = Fastify(serverOptions(corral)).withTypeProvider<TypeBoxTypeProvider>();
  // Before any route: proxied traffic is taken off the raw server ahead of fastify (a proxy
  // role's API forwarding first, so the instance proxy attached after it sees requests first).
  const role = setUpRole(app, corral);
  const proxy = attachProxy(app, corral);
  if (role.targets) proxy.useTargets(role.targets);
  // An app's URL follows the proxy's one rule for instance hosts (origins.ts).
  corral.apps?.useAddresses((owner, name) => proxy.origins.appUrl(owner, name));
  // WebAuthn's relying party is the main origin (its host name is the RP ID).
  corral.accounts.passkeys.useOrigin(() => proxy.origins.main());

  registerErrorHandling(app);
  logOneLinePerRequest(app);
  await app.register(cookie);
  await app.register(formbody, { bodyLimit: config.bodyLimitBytes });
  await app.register(websocket, { options: { maxPayload: config.bodyLimitBytes } });
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'corral API', version: VERSION, description: 'Run, supervise, sandbox, meter and expose processes.' },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
          session: { type: 'apiKey', in: 'cookie', name: 'corral_session' },
        },
      },
      security: [{ bearer: [] }, { session: [] }],
    },
  });
  await app.register(authPlugin, { corral });
  await app.register(passkeyGate, { corral });

  await app.register(healthRoutes, { corral });
  await app.register(metricsRoutes, { corral });
  await app.register(securityHeadersHook, { tls: !!config.tls });
  await app.register(loginRoutes, { corral, proxy });
  await app.register(hostLoginRoutes, { proxy });
  await app.register(identityKeyRoutes, { proxy });
  await app.register(uiRoutes);
  // The proxy role has no API of its own: its /api/ requests are forwarded to the manager (src/roles).
  if (config.role !== 'proxy') await app.register(
    async (api) => {
      await api.register(indexRoutes, { links: LINKS });
      await api.register(sessionRoutes, { corral });
      await api.register(userRoutes, { corral });
      await api.register(groupRoutes, { corral });
      await api.register(passkeyRoutes, { corral });
      await api.register(tokenRoutes, { corral });
      await api.register(jobRoutes, { corral });
      await api.register(instanceRoutes, { corral });
      await api.register(appRoutes, { corral });
      await api.register(proxySettingsRoutes, { corral, proxy });
      await api.register(relayRoutes, { corral });
      await api.register(golemHerderAdminRoutes, { corral });
      await api.register(usageRoutes, { corral });
      await api.register(statsRoutes, { corral });
      api.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
      // indexPrefix: the page's assets are linked under /api/v1/docs/static/ also when it is
      // opened without the trailing slash (else /docs/static/… 404s and the page is blank).
      await api.register(swaggerUi, { routePrefix: '/docs', indexPrefix: API_PREFIX });
    },
    { prefix: API_PREFIX },
  );
  await registerRoleRoutes(app, corral);
  // Old tools' APIs configured with a `prefix` live on this listener (see src/compat).
  await mountCompatAdapters(app, corral, proxy);
  return app;
}

/** One log line per request, with the user and without secrets in the URL. */
export function logOneLinePerRequest(app: FastifyInstance): void {
  app.addHook('onResponse', async (request, reply) => {
    request.log.info(
      {
        method: request.method,
        url: redactUrl(request.url),
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 10) / 10,
        user: request.principal?.user.name,
        ip: request.ip,
      },
      'request',
    );
  });
}
