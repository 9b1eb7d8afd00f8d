/**
 * pixelated-dispatcher's manager API (see docs/compat.md): agents are corral users, each
 * agent's process their default instance. The old manager had no auth at all; corral asks
 * for an admin token unless `auth` is off on a loopback listener.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { isCorralError } from '../../core/errors.js';
import { ErrorBody } from '../../http/errors.js';
import { compatUser } from '../auth.js';
import type { CompatPluginOptions } from '../index.js';
import { acceptJsonOfAnyType } from '../json-body.js';
import { PixelatedAgents, type Agent } from './agents.js';

const tags = ['pixelated-dispatcher'];
const AgentName = Type.String({ pattern: '^[a-z0-9_.-]+$', maxLength: 64 });
const AgentSchema = Type.Object({ name: Type.String(), uri: Type.String(), state: Type.Union([Type.Literal('running'), Type.Literal('stopped')]) });
const StateSchema = Type.Object({ state: Type.Union([Type.Literal('running'), Type.Literal('stopped')]) }, { additionalProperties: false });
const NameParams = Type.Object({ name: AgentName });
const Empty = Type.Object({});
const Errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody };

export const pixelatedManager: FastifyPluginAsyncTypebox<CompatPluginOptions<'pixelatedManager'>> = async (app, { corral, settings }) => {
  const agents = new PixelatedAgents(corral);
  const prefix = app.prefix;
  acceptJsonOfAnyType(app, corral.config.bodyLimitBytes);

  const admin = (request: FastifyRequest, write = false) => compatUser(corral, request, settings, write ? 'admin:write' : 'admin:read');
  const uri = (request: FastifyRequest, name: string) => `${request.protocol}://${request.headers.host ?? 'localhost'}${prefix}/agents/${name}`;
  const show = (request: FastifyRequest, a: Agent) => ({ name: a.user.name, uri: uri(request, a.user.name), state: a.state });

  app.get('/agents', { schema: { summary: 'Every agent (user) and whether it runs', tags, response: { 200: Type.Object({ agents: Type.Array(AgentSchema) }), ...Errors } } }, async (request) => {
    await admin(request);
    return { agents: (await agents.list()).map((a) => show(request, a)) };
  });

  app.post(
    '/agents',
    {
      schema: {
        summary: 'Add an agent: a user with this password (its instance is made at its first start)',
        tags,
        body: Type.Object({ name: AgentName, password: Type.String({ minLength: 8, maxLength: 1024 }) }, { additionalProperties: false }),
        response: { 201: AgentSchema, ...Errors },
      },
    },
    async (request, reply) => {
      await admin(request, true);
      const agent = show(request, await agents.create(request.body.name, request.body.password));
      return reply.code(201).header('location', agent.uri).send(agent);
    },
  );

  app.get('/agents/:name', { schema: { summary: 'One agent', tags, params: NameParams, response: { 200: AgentSchema, ...Errors } } }, async (request) => {
    await admin(request);
    return show(request, await agents.get(request.params.name));
  });

  app.delete('/agents/:name', { schema: { summary: 'Remove the agent: its instances and its user', tags, params: NameParams, response: { 200: Empty, ...Errors } } }, async (request) => {
    await admin(request, true);
    await agents.remove(request.params.name);
    return {};
  });

  app.get('/agents/:name/state', { schema: { summary: "The agent's state", tags, params: NameParams, response: { 200: StateSchema, ...Errors } } }, async (request) => {
    await admin(request);
    return { state: (await agents.get(request.params.name)).state };
  });

  app.put(
    '/agents/:name/state',
    { schema: { summary: 'Start or stop the agent (409 when it already is)', tags, params: NameParams, body: StateSchema, response: { 200: StateSchema, ...Errors } } },
    async (request) => {
      await admin(request, true);
      return { state: (await agents.setState(request.params.name, request.body.state)).state };
    },
  );

  app.get(
    '/agents/:name/runtime',
    {
      schema: {
        summary: 'Where the running agent listens',
        tags,
        params: NameParams,
        response: { 200: Type.Object({ state: Type.String(), port: Type.Optional(Type.Integer()) }), ...Errors },
      },
    },
    async (request) => {
      await admin(request);
      const agent = await agents.get(request.params.name);
      if (agent.state === 'stopped') return { state: 'stopped' };
      const port = agents.port(agent);
      return { state: 'running', ...(port !== undefined && { port }) };
    },
  );

  app.post(
    '/agents/:name/authenticate',
    {
      schema: {
        summary: "Check the agent's password: 200 {} or 403 {}",
        tags,
        params: NameParams,
        body: Type.Object({ password: Type.String({ maxLength: 1024 }) }, { additionalProperties: false }),
        response: { 200: Empty, 403: Empty, 400: ErrorBody, 404: ErrorBody, 429: ErrorBody },
      },
    },
    async (request, reply) => {
      await admin(request, true);
      try {
        await agents.authenticate(request.params.name, request.body.password, request.ip);
        return {};
      } catch (e) {
        if (isCorralError(e) && e.code === 'bad_credentials') return reply.code(403).send({});
        throw e;
      }
    },
  );

  // The old manager answered with the agent's state after the wipe, as GET …/state does.
  app.put('/agents/:name/reset_data', { schema: { summary: "Empty the agent's data dir (409 while it runs)", tags, params: NameParams, response: { 200: StateSchema, ...Errors } } }, async (request) => {
    await admin(request, true);
    await agents.resetData(request.params.name);
    return { state: (await agents.get(request.params.name)).state };
  });

  app.get(
    '/stats/memory_usage',
    {
      schema: {
        summary: 'Memory of the running agents, in bytes',
        tags,
        response: {
          200: Type.Object({
            total_usage: Type.Integer(),
            average_usage: Type.Integer(),
            agents: Type.Array(Type.Object({ name: Type.String(), memory_usage: Type.Integer() })),
          }),
          ...Errors,
        },
      },
    },
    async (request) => {
      await admin(request);
      const running = (await agents.list()).filter((a) => a.state === 'running');
      const usage = await Promise.all(running.map(async (a) => ({ name: a.user.name, memory_usage: await agents.memoryUsage(a) })));
      const total = usage.reduce((sum, u) => sum + u.memory_usage, 0);
      return { total_usage: total, average_usage: usage.length ? Math.round(total / usage.length) : 0, agents: usage };
    },
  );
};
