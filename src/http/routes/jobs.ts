/**
 * Jobs: short sandboxed runs with files in and results out, and the runtimes they run in.
 * POST waits for the result by default (`?wait=false` answers 202 at once); the attach
 * WebSocket streams output live and takes stdin.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { RawData, WebSocket } from 'ws';
import type { Corral } from '../../core/corral.js';
import { RuntimeSchema } from '../../core/jobs/runtimes.js';
import { JobRequestSchema, JobSummarySchema, JobViewSchema, type AttachFrame } from '../../core/jobs/schemas.js';
import { requireScope } from '../auth.js';

const tags = ['jobs'];
const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) });

export const jobRoutes: FastifyPluginAsyncTypebox<{ corral: Corral }> = async (app, { corral }) => {
  const jobs = corral.jobs;
  const c = corral.config.jobs;
  // Room for the largest allowed files in base64 plus stdin and the rest of the request.
  const bodyLimit = Math.max(corral.config.bodyLimitBytes, Math.ceil(c.maxTotalFileBytes * 1.4) + c.stdinBytes * 2 + 65536);

  app.get(
    '/runtimes',
    {
      schema: {
        summary: 'Runtimes jobs can use on this server, with versions',
        tags,
        response: { 200: Type.Object({ runtimes: Type.Array(RuntimeSchema) }) },
      },
    },
    async (request) => {
      requireScope(request, 'jobs:read');
      return { runtimes: jobs.runtimes.list() };
    },
  );

  app.post(
    '/jobs',
    {
      bodyLimit,
      schema: {
        summary: 'Run a job; waits for the result unless wait=false',
        tags,
        querystring: Type.Object(
          { wait: Type.Boolean({ default: true, description: 'false: answer 202 with the id at once' }) },
          { additionalProperties: false },
        ),
        body: JobRequestSchema,
        response: { 200: JobViewSchema, 202: JobViewSchema },
      },
    },
    async (request, reply) => {
      const { user } = requireScope(request, 'jobs:write');
      const { id, done } = await jobs.submit(user, request.body);
      if (!request.query.wait) return reply.code(202).header('location', `${request.url.split('?')[0]}/${id}`).send(await jobs.get(user, id));
      return done;
    },
  );

  app.get(
    '/jobs',
    {
      schema: {
        summary: 'Your jobs, newest first (admins: all=true for everyone’s)',
        tags,
        querystring: Type.Object(
          { all: Type.Boolean({ default: false }), limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ jobs: Type.Array(JobSummarySchema) }) },
      },
    },
    async (request) => {
      const { user } = requireScope(request, 'jobs:read');
      return { jobs: await jobs.list(user, request.query) };
    },
  );

  app.get(
    '/jobs/:id',
    { schema: { summary: 'A job: its state, and its result once done', tags, params: IdParams, response: { 200: JobViewSchema } } },
    async (request) => jobs.get(requireScope(request, 'jobs:read').user, request.params.id),
  );

  // Cancel: DELETE (REST) or POST …/cancel (for clients that cannot send DELETE); both answer
  // the job as it ended (killed, note "cancelled"), 409 when it had already ended.
  const cancel = {
    schema: {
      summary: 'Cancel a queued or running job (status killed, note "cancelled"); 409 once it has ended',
      tags,
      params: IdParams,
      response: { 200: JobViewSchema },
    },
  };
  app.delete('/jobs/:id', cancel, async (request) => jobs.cancel(requireScope(request, 'jobs:write').user, request.params.id));
  app.post('/jobs/:id/cancel', cancel, async (request) => jobs.cancel(requireScope(request, 'jobs:write').user, request.params.id));

  app.get(
    '/jobs/:id/attach',
    {
      websocket: true,
      schema: {
        summary: 'WebSocket: output as JSON frames {type: stdout|stderr, data}, then {type: exit, job}; frames sent are stdin',
        tags,
        params: IdParams,
      },
      // Refused before the upgrade, as plain HTTP errors: no scope, no such job.
      preValidation: async (request) => {
        const { user } = requireScope(request, 'jobs:write');
        await jobs.get(user, (request.params as { id: string }).id);
      },
    },
    async (socket: WebSocket, request) => {
      const { user } = requireScope(request, 'jobs:write');
      const send = (frame: AttachFrame) => {
        if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(frame));
      };
      const early: RawData[] = [];
      let write = (data: RawData) => void early.push(data);
      socket.on('message', (data) => write(data));
      try {
        const attachment = await jobs.attach(user, request.params.id, {
          output: (type, chunk) => send({ type, data: chunk.toString('utf8') }),
          exit: (job) => {
            send({ type: 'exit', job });
            socket.close(1000, job.status ?? 'done');
          },
        });
        const { job } = attachment;
        if (job.stdout) send({ type: 'stdout', data: job.stdout });
        if (job.stderr) send({ type: 'stderr', data: job.stderr });
        if (job.state === 'done') {
          send({ type: 'exit', job });
          socket.close(1000, job.status ?? 'done');
          return;
        }
        write = (data) => {
          attachment.write(Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer));
        };
        for (const data of early.splice(0)) write(data);
        socket.on('close', () => attachment.detach());
      } catch (e) {
        socket.close(1011, (e as Error).message.slice(0, 120));
      }
    },
  );
};
