/**
 * Controlled minions are jobs: `POST /minion/v1/spawn` turns form fields into files, `env`
 * into the runtime, runs `sh main.sh` in the job's dir with the minion time limit, and answers
 * with the `output` file (MIME type from its extension) or `{"StdOut","StdErr"}` JSON — also
 * when that file was not written, as the old herder did; past the time limit it answers 500.
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
      const timeoutSeconds = Math.min(settings.minionTimeoutSeconds, c.maxTimeoutSeconds);
      const { done } = await corral.jobs.submit(user, {
        runtime: env,
        files,
        entry: 'sh main.sh',
        timeoutSeconds,
        ...(output !== undefined && output !== 'stdout' && { output }),
      });
      const job = await done;
      const streams = { StdOut: job.stdout, StdErr: job.stderr };
      // The old herder's RunLambda gave up at its deadline and SpawnHandler answered 500:
      // old clients tell a timed-out minion from a silent one by that status.
      if (job.status === 'timeout') {
        throw errors.minionTimeout(`context deadline exceeded: the minion ran past its ${timeoutSeconds} s limit`, {
          details: streams,
        });
      }
      // Without a file to return (none asked, `stdout`, or one the minion did not write) the old
      // herder answered 200 with the streams.
      if (output === undefined || output === 'stdout' || !job.outputFile) {
        return { ...streams, stdout: job.stdout, stderr: job.stderr, exitCode: job.exitCode, status: job.status };
      }
      return reply.type(job.outputFile.mimeType).send(Buffer.from(job.outputFile.content, 'base64'));
    },
  );
};
