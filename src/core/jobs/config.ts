/**
 * The `jobs` section of the config: capacity, default and maximum limits, retention, and the
 * runtimes an admin adds beside the detected ones. Lives here so src/core/config.ts only
 * needs one line for it.
 */
import { Type, type Static } from '@sinclair/typebox';

const MiB = 1024 * 1024;

export const RuntimeConfigSchema = Type.Object(
  {
    name: Type.String({ pattern: '^[a-z][a-z0-9_.-]{0,31}$' }),
    /**
     * Shell command run in the job's dir when the job names no entry, e.g. `python3 main.py`.
     * May be left out for a built-in runtime's name (sh, python, …): then its command is kept.
     */
    command: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
    /** Shell command printing the version; its first line is shown by GET /runtimes. */
    versionCommand: Type.Optional(Type.String({ maxLength: 4096 })),
    /** Host paths the runtime needs, bound read-only at the same place in the sandbox. */
    readOnlyPaths: Type.Array(Type.String({ pattern: '^/' }), { default: [] }),
    /** Container image, for container drivers (ignored by the process driver). */
    image: Type.Optional(Type.String()),
    /** Driver its jobs run on (docs/docker.md); default: drivers.default. */
    driver: Type.Optional(Type.String({ pattern: '^[a-z]+$' })),
    /** Whether jobs of this runtime may ask for the network (still needs jobs.allowNetwork). */
    network: Type.Boolean({ default: false }),
    /** File name of the entry file, used by `corral job run` to name the first file. */
    entryFile: Type.Optional(Type.String()),
    /**
     * Shell command run once before `command`, in the same dir (a compiler); when it fails the
     * job ends as `compile-error` with its output.
     */
    compileCommand: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
  },
  { additionalProperties: false },
);
export type RuntimeConfig = Static<typeof RuntimeConfigSchema>;

export const JobsConfigSchema = Type.Object(
  {
    enabled: Type.Boolean({ default: true }),
    /** Jobs running at once; 0 = one per CPU core. */
    poolSize: Type.Integer({ minimum: 0, default: 0 }),
    /** Jobs waiting beyond the pool; past this, 429 with Retry-After. */
    queueLength: Type.Integer({ minimum: 0, default: 256 }),
    /** Jobs one user may run at once; the rest wait in the queue. */
    perUserConcurrency: Type.Integer({ minimum: 1, default: 8 }),
    /**
     * Where job work dirs live: `memory` = a tmpfs (/dev/shm; what a job writes counts against
     * its memory limit), `disk` = the data dir. Falls back to disk without a tmpfs.
     */
    workDirs: Type.Union([Type.Literal('memory'), Type.Literal('disk')], { default: 'memory' }),
    /** Pre-started sandboxes kept ready for any owner's first job; 0 = twice the pool size. */
    warmSandboxes: Type.Integer({ minimum: 0, default: 0 }),
    /** Used sandboxes kept for their owner's next job (all owners together); 0 = 4 × warmSandboxes. */
    maxIdleSandboxes: Type.Integer({ minimum: 0, default: 0 }),
    /** How long a used sandbox waits for its owner's next job before it is destroyed. */
    sandboxIdleSeconds: Type.Number({ exclusiveMinimum: 0, default: 60 }),
    /** Jobs one sandbox runs at most before it is replaced by a fresh one. */
    jobsPerSandbox: Type.Integer({ minimum: 1, default: 500 }),
    /** Time limit of a runtime's compile step (C, C++, Java…). */
    compileTimeoutSeconds: Type.Number({ exclusiveMinimum: 0, default: 20 }),
    /** Cases in one batch request. */
    maxCases: Type.Integer({ minimum: 1, default: 100 }),
    /** Bytes of all cases' stdin and expected output together. */
    maxCaseBytes: Type.Integer({ minimum: 1024, default: 8 * MiB }),
    timeoutSeconds: Type.Number({ exclusiveMinimum: 0, default: 10, description: 'default job timeout' }),
    maxTimeoutSeconds: Type.Number({ exclusiveMinimum: 0, default: 30, description: 'cap on a job timeout' }),
    memoryBytes: Type.Integer({ minimum: 4 * MiB, default: 256 * MiB }),
    maxMemoryBytes: Type.Integer({ minimum: 4 * MiB, default: 1024 * MiB }),
    pids: Type.Integer({ minimum: 1, default: 64 }),
    maxPids: Type.Integer({ minimum: 1, default: 256 }),
    /** CPU share of one job in cores. */
    cpus: Type.Number({ exclusiveMinimum: 0, default: 1 }),
    outputBytes: Type.Integer({ minimum: 1024, default: 1 * MiB, description: 'default cap on stdout and on stderr' }),
    maxOutputBytes: Type.Integer({ minimum: 1024, default: 8 * MiB }),
    /** Largest file a job may write (RLIMIT_FSIZE). */
    fileSizeBytes: Type.Integer({ minimum: 1024, default: 64 * MiB }),
    openFiles: Type.Integer({ minimum: 16, default: 256 }),
    maxFiles: Type.Integer({ minimum: 1, default: 200 }),
    maxTotalFileBytes: Type.Integer({ minimum: 1024, default: 8 * MiB }),
    maxOutputFileBytes: Type.Integer({ minimum: 1024, default: 8 * MiB }),
    stdinBytes: Type.Integer({ minimum: 0, default: 1 * MiB }),
    retentionSeconds: Type.Integer({ minimum: 1, default: 3600, description: 'how long results are kept' }),
    /** Whether any job may have the network (each runtime must allow it too). */
    allowNetwork: Type.Boolean({ default: false }),
    runtimes: Type.Array(RuntimeConfigSchema, { default: [] }),
  },
  { additionalProperties: false, default: {} },
);
export type JobsConfig = Static<typeof JobsConfigSchema>;
