/**
 * Apps: Procfile sources deployed as numbered releases, switched without downtime, run as
 * a formation of copies (docs/apps.md). `{name}` is the app's name (one of the caller's) or
 * `owner:name` (admins). Another user's app is 404. A deploy is multipart: an `options`
 * field (JSON, optional) and an `archive` file; it answers when the release serves, or with
 * `deploy_failed` (422) carrying the state, exit code and last log lines of what failed.
 */
import multipart from '@fastify/multipart';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import {
  AppSchema,
  DeployOptionsSchema,
  DeployResultSchema,
  EnvPatchSchema,
  FormationSchema,
  ReleaseSchema,
  RollbackSchema,
} from '../../core/apps/index.js';
import type { Corral } from '../../core/corral.js';
import { errors } from '../../core/errors.js';
import { requireScope } from '../auth.js';
import { ErrorBody } from '../errors.js';
import { readJsonAndArchive } from './instances/upload.js';
import { LogQuerySchema, replyWithLog, streamingReplies } from './log-replies.js';

const tags = ['apps'];
const NameParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 200, description: 'app name, or owner:name' }) });
const ReleaseParams = Type.Object({ name: NameParams.properties.name, version: Type.Integer({ minimum: 1 }) });
/** The error body with its details kept (the quota and its limit, the field of a missing release). */
const ErrorWithDetails = Type.Object({ error: Type.Object({ code: Type.String(), message: Type.String() }, { additionalProperties: true }) });
const Errors = { 400: ErrorWithDetails, 403: ErrorWithDetails, 404: ErrorWithDetails, 409: ErrorWithDetails };
/** A failed release: what failed, its state and exit, and its last log lines. */
const DeployFailedBody = Type.Object({
  error: Type.Object({
    code: Type.String(),
    message: Type.String(),
    release: Type.Optional(Type.Integer()),
    copy: Type.Optional(Type.String()),
    state: Type.Optional(Type.String()),
    exitCode: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
    exitSignal: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    logs: Type.Optional(Type.Array(Type.String())),
  }),
});

export const appRoutes: FastifyPluginAsyncTypebox<{ corral: Corral }> = async (app, { corral }) => {
  const apps = corral.apps;
  const { maxUploadBytes } = corral.config.instances;
  if (!app.hasContentTypeParser('multipart/form-data')) await app.register(multipart, { limits: { fileSize: maxUploadBytes, files: 1 } });
  const streams = streamingReplies(app);

  app.post(
    '/apps/:name/releases',
    {
      schema: {
        summary: 'Deploy: a new release of the app (created on its first deploy); multipart "options" (JSON) + "archive"',
        tags,
        params: NameParams,
        consumes: ['multipart/form-data'],
        response: { 201: DeployResultSchema, ...Errors, 413: ErrorBody, 422: DeployFailedBody },
      },
    },
    async (request, reply) => {
      const { user } = requireScope(request, 'instances:write');
      if (!request.isMultipart()) throw errors.unsupportedMediaType('send multipart/form-data: an "options" field (JSON) and an "archive" file');
      const { value, archive } = await readJsonAndArchive(request, corral.config.data, maxUploadBytes, 'options', DeployOptionsSchema);
      if (!archive) throw errors.validation('multipart: missing the "archive" file (a tar, tar.gz or zip holding a Procfile)');
      const result = await apps.deploy(user, request.params.name, archive, value);
      return reply.code(201).send(result);
    },
  );

  app.get(
    '/apps',
    { schema: { summary: 'List your apps (all, for admins)', tags, response: { 200: Type.Object({ apps: Type.Array(AppSchema) }) } } },
    async (request) => ({ apps: await apps.list(requireScope(request, 'instances:read').user) }),
  );

  app.get(
    '/apps/:name',
    { schema: { summary: 'Show an app: formation, copies, config var names, a switch in progress', tags, params: NameParams, response: { 200: AppSchema, 404: ErrorBody } } },
    async (request) => apps.get(requireScope(request, 'instances:read').user, request.params.name),
  );

  app.delete(
    '/apps/:name',
    { schema: { summary: 'Stop every copy and delete the app, its releases and their sources', tags, params: NameParams, response: { 204: Type.Null(), 404: ErrorBody } } },
    async (request, reply) => {
      await apps.remove(requireScope(request, 'instances:write').user, request.params.name);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/apps/:name/releases',
    { schema: { summary: 'Releases, newest first', tags, params: NameParams, response: { 200: Type.Object({ releases: Type.Array(ReleaseSchema) }), 404: ErrorBody } } },
    async (request) => ({ releases: await apps.releases(requireScope(request, 'instances:read').user, request.params.name) }),
  );

  app.get(
    '/apps/:name/releases/:version',
    { schema: { summary: 'One release', tags, params: ReleaseParams, response: { 200: ReleaseSchema, 404: ErrorWithDetails } } },
    async (request) => apps.release(requireScope(request, 'instances:read').user, request.params.name, request.params.version),
  );

  app.post(
    '/apps/:name/rollback',
    {
      schema: {
        summary: "Roll back: a new release from an old one's source and config vars (default: the one before the current)",
        tags,
        params: NameParams,
        body: RollbackSchema,
        response: { 201: DeployResultSchema, ...Errors, 422: DeployFailedBody },
      },
    },
    async (request, reply) => {
      const result = await apps.rollback(requireScope(request, 'instances:write').user, request.params.name, request.body.version);
      return reply.code(201).send(result);
    },
  );

  app.get(
    '/apps/:name/env',
    {
      schema: {
        summary: 'The config vars, with their values',
        tags,
        params: NameParams,
        response: { 200: Type.Object({ env: Type.Record(Type.String(), Type.String()) }), 404: ErrorBody },
      },
    },
    async (request) => ({ env: await apps.env(requireScope(request, 'instances:read').user, request.params.name) }),
  );

  app.patch(
    '/apps/:name/env',
    {
      schema: {
        summary: 'Set and unset config vars: a new release and a zero-downtime restart',
        tags,
        params: NameParams,
        body: EnvPatchSchema,
        response: {
          200: Type.Object({ app: AppSchema, release: Type.Union([ReleaseSchema, Type.Null()]) }),
          ...Errors,
          422: DeployFailedBody,
        },
      },
    },
    async (request) => apps.changeEnv(requireScope(request, 'instances:write').user, request.params.name, request.body),
  );

  app.put(
    '/apps/:name/formation',
    {
      schema: {
        summary: 'Scale: copies per process type, e.g. {"web": 3, "worker": 1}',
        tags,
        params: NameParams,
        body: FormationSchema,
        response: { 200: AppSchema, ...Errors },
      },
    },
    async (request) => apps.scale(requireScope(request, 'instances:write').user, request.params.name, request.body),
  );

  app.get(
    '/apps/:name/logs',
    {
      schema: {
        summary: "The app's log: every copy's lines (marked with the copy) across deploys; tail, search, download or follow",
        tags,
        params: NameParams,
        querystring: LogQuerySchema,
      },
    },
    async (request, reply) => {
      const { app: found, log } = await apps.output(requireScope(request, 'instances:read').user, request.params.name);
      return replyWithLog(reply, log, request.query, { name: found.name, streams, clientCap: corral.config.instances.logs.clientBufferBytes });
    },
  );

  app.post(
    '/apps/:name/restart',
    {
      schema: {
        summary: 'New copies of the current release, switched to without downtime',
        tags,
        params: NameParams,
        response: { 200: AppSchema, ...Errors, 422: DeployFailedBody },
      },
    },
    async (request) => apps.restart(requireScope(request, 'instances:write').user, request.params.name),
  );
};
