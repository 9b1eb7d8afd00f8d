/**
 * Controlled minions are jobs: `POST /minion/v1/spawn` turns form fields into files, `env`
 * into the runtime, runs `sh main.sh` in the job's dir with the minion time limit, and answers
 * with the `output` file (MIME type from its extension) or `{"StdOut","StdErr"}` JSON.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { errors } from '../../core/errors.js';
import type { CompatPluginOptions } from '../index.js';
import { compatUser } from '../auth.js';
import { checkFields, fileFields, filesBodyLimit, formFields } from './forms.js';

const MinionFields = Type.Object(
  {
    env: Type.String({ minLength: 1, maxLength: 64, description: 'the runtime: python, ruby, node, latex, sh…' }),
    output: Type.Optional(Type.String({ minLength: 1, maxLength: 512, description: 'a file to answer with' })),
  },
  { additionalProperties: false },
);

export const minionRoutes: FastifyPluginAsyncTypebox<CompatPluginOptions<'golemHerder'>> = async (app, { corral, settings }) => {
  const c = corral.config.jobs;
  const bodyLimit = filesBodyLimit(corral);

  app.post(
    '/minion/v1/spawn',
    { bodyLimit, schema: { summary: 'golem-herder: run a controlled minion (form: env, output, files)', tags: ['golem-herder'] } },
    async (request, reply) => {
      const user = await compatUser(corral, request, settings, 'jobs:write');
      const fields = formFields(request);
      const { env, output } = checkFields(MinionFields, fields);
      const files = fileFields(fields, Object.keys(MinionFields.properties));
      const { done } = await corral.jobs.submit(user, {
        runtime: env,
        files,
        entry: 'sh main.sh',
        timeoutSeconds: Math.min(settings.minionTimeoutSeconds, c.maxTimeoutSeconds),
        ...(output !== undefined && { output }),
      });
      const job = await done;
      const streams = { StdOut: job.stdout, StdErr: job.stderr };
      if (output === undefined) {
        return { ...streams, stdout: job.stdout, stderr: job.stderr, exitCode: job.exitCode, status: job.status };
      }
      if (!job.outputFile) {
        throw errors.notFound(`the minion wrote no file "${output}" (${job.status}, exit code ${job.exitCode ?? 'none'})`, {
          details: streams,
        });
      }
      return reply.type(job.outputFile.mimeType).send(Buffer.from(job.outputFile.content, 'base64'));
    },
  );
};
