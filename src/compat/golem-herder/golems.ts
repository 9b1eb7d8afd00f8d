/**
 * Golems are instances: one headless Chromium per document id, opened at the configured
 * document URL with a fresh profile on every start, restarted if it dies. spawn (a running
 * golem is returned as is), ls, reset (restart) and kill (delete) are instance calls; the
 * bootstrap script is served at `/golem/v1/` and `/`.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { User } from '../../core/accounts/index.js';
import { errors, isCorralError } from '../../core/errors.js';
import type { Instance } from '../../core/instances/index.js';
import { compatUser } from '../auth.js';
import type { CompatPluginOptions } from '../index.js';
import type { GolemSettings } from './actor.js';
import { bootstrapScript } from './bootstrap.js';
import { dockerListing } from './listing.js';
import { ANY_METHOD, GOLEM_ENV, instanceNameFor } from './names.js';
import { DocumentId, TokenQuery } from './schemas.js';

/** Launch flags for Chromium as root in a sandbox without a display (see docs/compat.md). */
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** A fresh profile on every start: nothing of an earlier run (cookies, storage) survives a reset. */
const GOLEM_SHELL =
  'rm -rf "$HOME/golem-profile" && exec "$GOLEM_HERDER_CHROMIUM" ' +
  `${CHROMIUM_FLAGS.join(' ')} --user-data-dir="$HOME/golem-profile" "$GOLEM_HERDER_URL"`;

export function documentUrl(settings: GolemSettings, id: string): string {
  const template = settings.documentUrl;
  const encoded = encodeURIComponent(id);
  return template.includes('{id}') ? template.replaceAll('{id}', encoded) : `${template.replace(/\/$/, '')}/${encoded}`;
}

/** A golem in ls, shaped like the Docker container listing old clients read. */
function listed(i: Instance) {
  const id = i.spec.env?.[GOLEM_ENV] ?? i.name;
  return dockerListing(i, `golem-${id}`, 'chromium', { webstrate: id });
}

const IdParams = Type.Object({ id: DocumentId });

export const golemRoutes: FastifyPluginAsyncTypebox<CompatPluginOptions<'golemHerder'>> = async (app, { corral, settings }) => {
  const service = corral.instances.service;
  const tags = ['golem-herder'];
  const user = (request: FastifyRequest) => compatUser(corral, request, settings, 'instances:write');

  async function spawn(owner: User, id: string): Promise<Instance> {
    const name = instanceNameFor('golem', id);
    try {
      return await service.create(owner, {
        name,
        shell: GOLEM_SHELL,
        env: { [GOLEM_ENV]: id, GOLEM_HERDER_URL: documentUrl(settings, id), GOLEM_HERDER_CHROMIUM: settings.chromium },
        limits: { memoryBytes: settings.golemMemoryBytes, pids: settings.golemPids },
        restart: 'always',
        stopGraceSeconds: 5,
      });
    } catch (e) {
      if (!isCorralError(e) || e.code !== 'instance_exists') throw e;
      // One golem per document: a second spawn gets the one there is (started if it was stopped).
      const existing = await service.get(owner, name);
      return existing.desiredState === 'running' ? existing : service.start(owner, name);
    }
  }

  app.get('/golem/v1/', { schema: { summary: 'golem-herder: the bootstrap script documents include', tags, querystring: TokenQuery } }, async (request, reply) =>
    serveBootstrap(request, reply),
  );
  app.get('/', { schema: { hide: true, querystring: TokenQuery } }, async (request, reply) => serveBootstrap(request, reply));

  function serveBootstrap(request: FastifyRequest, reply: FastifyReply) {
    const proto = corral.config.tls ? 'https' : 'http';
    const base = `${proto}://${request.headers.host ?? '127.0.0.1'}${app.prefix}`;
    return reply
      .type('application/javascript; charset=utf-8')
      .header('cache-control', 'no-cache')
      .send(bootstrapScript(base, (request.query as { token?: string }).token));
  }

  /** A route on the golem of one document: any method, acting for the caller, answering text. */
  function documentRoute(verb: string, summary: string, act: (owner: User, id: string) => Promise<string>): void {
    app.route({
      method: [...ANY_METHOD],
      url: `/golem/v1/${verb}/:id`,
      schema: { summary: `golem-herder: ${summary}`, tags, params: IdParams, querystring: TokenQuery },
      handler: async (request, reply) => {
        const text = await act(await user(request), (request.params as { id: string }).id);
        return reply.type('text/plain; charset=utf-8').send(text);
      },
    });
  }

  documentRoute('spawn', 'start the golem of a document (returns the running one)', async (owner, id) => (await spawn(owner, id)).id);

  documentRoute('reset', 'restart the golem of a document with a fresh profile', async (owner, id) => {
    const golem = await service.restart(owner, instanceNameFor('golem', id)).catch(async (e: unknown) => {
      if (isCorralError(e) && e.code === 'instance_not_found') return spawn(owner, id);
      throw e;
    });
    return golem.id;
  });

  documentRoute('kill', 'stop and remove the golem of a document', async (owner, id) => {
    await service.remove(owner, instanceNameFor('golem', id)).catch((e: unknown) => {
      if (isCorralError(e) && e.code === 'instance_not_found') throw errors.notFound(`no golem for document "${id}"`);
      throw e;
    });
    return 'killed';
  });

  app.route({
    method: [...ANY_METHOD],
    url: '/golem/v1/ls',
    schema: { summary: 'golem-herder: the golems', tags, querystring: TokenQuery },
    handler: async (request) => {
      const owner = await user(request);
      const mine = (await service.list(owner)).filter((i) => i.owner === owner.name && i.spec.env?.[GOLEM_ENV] !== undefined);
      return mine.filter((i) => i.desiredState === 'running').map(listed);
    },
  });
};
