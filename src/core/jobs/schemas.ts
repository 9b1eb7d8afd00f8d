/** The job payloads: one schema each, shared by validation, types, OpenAPI and the CLI. */
import { Type, type Static } from '@sinclair/typebox';
import { FilesSchema } from './files.js';
import { JOB_STATUSES } from './runner.js';
import { CaseSchema, CaseViewSchema, COMPARE_MODES, StepViewSchema } from './steps.js';

export const JobRequestSchema = Type.Object(
  {
    runtime: Type.String({ minLength: 1, maxLength: 64, description: 'a name from GET /api/v1/runtimes' }),
    files: Type.Optional(FilesSchema),
    entry: Type.Optional(
      Type.String({ minLength: 1, maxLength: 4096, description: "shell command run in the job's dir; default: the runtime's" }),
    ),
    args: Type.Optional(Type.Array(Type.String({ maxLength: 4096 }), { maxItems: 256, description: 'appended to entry, quoted' })),
    stdin: Type.Optional(Type.String({ description: 'utf-8 text written to stdin, which is then closed' })),
    interactive: Type.Optional(
      Type.Boolean({ description: 'keep stdin open for /attach clients (closed when the last one leaves)' }),
    ),
    timeoutSeconds: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    limits: Type.Optional(
      Type.Object(
        {
          memoryBytes: Type.Optional(Type.Integer({ minimum: 4 * 1024 * 1024 })),
          pids: Type.Optional(Type.Integer({ minimum: 1 })),
          outputBytes: Type.Optional(Type.Integer({ minimum: 1 })),
        },
        { additionalProperties: false },
      ),
    ),
    network: Type.Optional(Type.Boolean({ description: 'needs both the runtime and the admin to allow it' })),
    output: Type.Optional(Type.String({ minLength: 1, maxLength: 512, description: 'relative path of a file to return' })),
    cases: Type.Optional(
      Type.Array(CaseSchema, {
        minItems: 1,
        maxItems: 10_000,
        description: 'a batch: the program runs once per case (compiled once), each with its stdin, under the same limits',
      }),
    ),
    compare: Type.Optional(
      Type.Union(
        COMPARE_MODES.map((m) => Type.Literal(m)),
        { description: "how a case's stdout is compared with its expected output; default exact" },
      ),
    ),
  },
  { additionalProperties: false },
);
export type JobRequest = Static<typeof JobRequestSchema>;

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);

export const JobViewSchema = Type.Object({
  id: Type.String(),
  user: Type.String(),
  runtime: Type.String(),
  state: Type.Union([Type.Literal('queued'), Type.Literal('running'), Type.Literal('done')]),
  status: Type.Union([...JOB_STATUSES.map((s) => Type.Literal(s)), Type.Null()]),
  exitCode: Type.Union([Type.Integer(), Type.Null()]),
  signal: Nullable(Type.String()),
  stdout: Type.String(),
  stderr: Type.String(),
  stdoutTruncated: Type.Boolean(),
  stderrTruncated: Type.Boolean(),
  wallMs: Type.Union([Type.Number(), Type.Null()]),
  cpuMs: Type.Union([Type.Number(), Type.Null()]),
  memoryPeakBytes: Type.Union([Type.Integer(), Type.Null()]),
  outputFile: Type.Union([
    Type.Object({ name: Type.String(), mimeType: Type.String(), content: Type.String({ description: 'base64' }) }),
    Type.Null(),
  ]),
  note: Nullable(Type.String()),
  compile: Type.Union([StepViewSchema, Type.Null()], { description: 'the compile step of a compiled runtime' }),
  cases: Type.Union([Type.Array(CaseViewSchema), Type.Null()], { description: 'a batch: each case, in order' }),
  createdAt: Type.String({ format: 'date-time' }),
  startedAt: Nullable(Type.String({ format: 'date-time' })),
  finishedAt: Nullable(Type.String({ format: 'date-time' })),
  expiresAt: Nullable(Type.String({ format: 'date-time' })),
});
export type JobView = Static<typeof JobViewSchema>;

/** A listing entry: the view without the outputs. */
export const JobSummarySchema = Type.Omit(JobViewSchema, ['stdout', 'stderr', 'outputFile', 'compile', 'cases']);
export type JobSummary = Static<typeof JobSummarySchema>;

/** Frames the attach WebSocket sends: output chunks, then the result once. */
export type AttachFrame = { type: 'stdout' | 'stderr'; data: string } | { type: 'exit'; job: JobView };
