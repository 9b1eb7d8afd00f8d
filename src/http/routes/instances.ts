/**
 * Instances: supervised long-lived workloads. `{id}` in a path is the instance's id, its
 * name (one of the caller's own instances) or `owner:name` (admins). Another user's
 * instance is 404. Create takes a JSON spec, or multipart with a `spec` field and an
 * `archive` file (a Procfile app). Logs, attach and events live in instances/streams.ts.
 */
import multipart from '@fastify/multipart';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Corral } from '../../core/corral.js';
import { InstancePatchSchema, InstanceSchema, InstanceSpecSchema, SignalName } from '../../core/instances/index.js';
import { requireScope } from '../auth.js';
import { ErrorBody } from '../errors.js';
import { instanceStreamRoutes } from './instances/streams.js';
import { readUpload, sweepUploads, thenDiscard } from './instances/upload.js';

const tags = ['instances'];
const RefParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 200, description: 'instance id, name, or owner:name' }),
});
const Errors = { 400: ErrorBody, 404: ErrorBody, 409: ErrorBody };

export const instanceRoutes: FastifyPluginAsyncTypebox<{ corral: Corral }> = async (app, { corral }) => {
  const service = corral.instances.service;
  const { maxUploadBytes } = corral.config.instances;
  await app.register(multipart, { limits: { fileSize: maxUploadBytes, files: 1 } });
  await sweepUploads(corral.config.data); // left by a server that stopped mid-upload

  app.post(
    '/instances',
    {
      schema: {
        summary: 'Create an instance (JSON spec, or multipart: "spec" field + "archive" file)',
        tags,
        body: {
          content: {
            'application/json': { schema: InstanceSpecSchema },
            'multipart/form-data': { schema: {} },
          },
        } as unknown as typeof InstanceSpecSchema,
        response: { 201: InstanceSchema, ...Errors, 413: ErrorBody },
      },
    },
    async (request, reply) => {
      const { user } = requireScope(request, 'instances:write');
      const { spec, archive } = request.isMultipart()
        ? await readUpload(request, corral.config.data, maxUploadBytes)
        : { spec: request.body, archive: undefined };
      // A refused create (quota, name taken, …) must not leave the upload behind.
      const instance = await thenDiscard(archive, () => service.create(user, spec, archive));
      return reply.code(201).header('location', `${request.url.split('?')[0]}/${instance.id}`).send(instance);
    },
  );

  app.get(
    '/instances',
    {
      schema: {
        summary: 'List your instances (all, for admins)',
        tags,
        response: { 200: Type.Object({ instances: Type.Array(InstanceSchema) }) },
      },
    },
    async (request, reply) => {
      const { user } = requireScope(request, 'instances:read');
      // Already JSON text, sent as it is (the schema above documents it): serializing 5,000
      // instances through the schema cost more than reading them. As bytes: a string of
      // megabytes would be measured for its length and encoded again as it is written.
      return reply.type('application/json; charset=utf-8').send((await service.listJson(user)) as never);
    },
  );

  app.get(
    '/instances/:id',
    { schema: { summary: 'Show an instance', tags, params: RefParams, response: { 200: InstanceSchema, 404: ErrorBody } } },
    async (request) => service.get(requireScope(request, 'instances:read').user, request.params.id),
  );

  app.patch(
    '/instances/:id',
    {
      schema: {
        summary: 'Change the spec; takes effect at the next start or restart',
        tags,
        params: RefParams,
        body: InstancePatchSchema,
        response: { 200: InstanceSchema, ...Errors },
      },
    },
    async (request) => service.update(requireScope(request, 'instances:write').user, request.params.id, request.body),
  );

  app.delete(
    '/instances/:id',
    { schema: { summary: 'Stop and delete an instance and its files', tags, params: RefParams, response: { 204: Type.Null(), 404: ErrorBody } } },
    async (request, reply) => {
      await service.remove(requireScope(request, 'instances:write').user, request.params.id);
      return reply.code(204).send(null);
    },
  );

  for (const action of ['start', 'stop', 'restart'] as const) {
    app.post(
      `/instances/:id/${action}`,
      {
        schema: {
          summary: `${action[0]!.toUpperCase()}${action.slice(1)} an instance (sets its desired state first)`,
          tags,
          params: RefParams,
          response: { 200: InstanceSchema, ...Errors },
        },
      },
      async (request) => service[action](requireScope(request, 'instances:write').user, request.params.id),
    );
  }

  app.post(
    '/instances/:id/signal',
    {
      schema: {
        summary: 'Send a signal to the running instance',
        tags,
        params: RefParams,
        body: Type.Object({ signal: SignalName }, { additionalProperties: false }),
        response: { 200: InstanceSchema, ...Errors },
      },
    },
    async (request) => service.signal(requireScope(request, 'instances:write').user, request.params.id, request.body.signal),
  );

  await app.register(instanceStreamRoutes, { corral });
};
