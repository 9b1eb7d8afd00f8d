/**
 * The `instances` section of the config: restart backoff, reconcile period, log retention,
 * default and maximum limits. Lives here so src/core/config.ts only needs one line for it.
 */
import { Type, type Static } from '@sinclair/typebox';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

const LimitsConfig = (d: { memoryBytes: number; cpus: number; pids: number; diskBytes: number }) =>
  Type.Object(
    {
      memoryBytes: Type.Integer({ minimum: 4 * MiB, default: d.memoryBytes }),
      cpus: Type.Number({ exclusiveMinimum: 0, default: d.cpus }),
      pids: Type.Integer({ minimum: 1, default: d.pids }),
      diskBytes: Type.Integer({ minimum: MiB, default: d.diskBytes }),
    },
    { additionalProperties: false, default: {} },
  );

export const InstancesConfigSchema = Type.Object(
  {
    /** How often the supervisor compares desired with observed state. */
    reconcileSeconds: Type.Number({ exclusiveMinimum: 0, default: 10 }),
    /** How often each running instance's data dir is measured against its disk limit; 0 = never. */
    diskCheckSeconds: Type.Number({ minimum: 0, default: 30 }),
    restart: Type.Object(
      {
        /** First restart delay; each further one is ×factor, up to maxDelayMs (PM2's defaults). */
        initialDelayMs: Type.Integer({ minimum: 0, default: 1000 }),
        factor: Type.Number({ minimum: 1, default: 1.5 }),
        maxDelayMs: Type.Integer({ minimum: 0, default: 15_000 }),
        /** Up this long, a workload counts as stable and the delay starts over. */
        resetAfterSeconds: Type.Number({ minimum: 0, default: 30 }),
      },
      { additionalProperties: false, default: {} },
    ),
    logs: Type.Object(
      {
        /** A log file is rotated when it reaches this size … */
        fileBytes: Type.Integer({ minimum: 4096, default: 8 * MiB }),
        /** … and this many rotated files are kept beside the current one. */
        keepFiles: Type.Integer({ minimum: 0, default: 3 }),
        /** Lines and bytes kept in memory per instance for `logs -f` and `tail`. */
        memoryLines: Type.Integer({ minimum: 0, default: 1000 }),
        memoryBytes: Type.Integer({ minimum: 0, default: 256 * 1024 }),
        /** Longer lines are split. */
        maxLineBytes: Type.Integer({ minimum: 80, default: 16 * 1024 }),
        /** Output waiting for the disk past this is dropped (with a marker line). */
        pendingWriteBytes: Type.Integer({ minimum: 4096, default: 4 * MiB }),
        /**
         * A follower or attached client this far behind loses lines (with a marker). Above what
         * one turn of the event loop may read from a busy child (libuv reads a ready pipe up to
         * 32 × 64 KiB = 2 MiB): below that, a client that keeps up was judged behind after one burst.
         */
        clientBufferBytes: Type.Integer({ minimum: 4096, default: 4 * MiB }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** Live CPU and memory samples of running instances, kept in memory (stats.ts). */
    stats: Type.Object(
      {
        intervalSeconds: Type.Number({ minimum: 0.2, default: 5, description: 'how often running instances are sampled' }),
        keepSeconds: Type.Integer({ minimum: 10, default: 3600, description: 'how much history is kept per instance and for the server' }),
        maxSamplesPerSecond: Type.Integer({
          minimum: 1,
          default: 100,
          description: 'with more running instances than this × intervalSeconds, each is sampled in turn, less often (those whose stats were asked for lately first)',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** Limits of an instance whose spec sets none. */
    defaultLimits: LimitsConfig({ memoryBytes: 512 * MiB, cpus: 1, pids: 256, diskBytes: 1 * GiB }),
    /** The largest limits a spec may ask for. */
    maxLimits: LimitsConfig({ memoryBytes: 4 * GiB, cpus: 4, pids: 4096, diskBytes: 16 * GiB }),
    /** Largest uploaded source archive. */
    maxUploadBytes: Type.Integer({ minimum: 1024, default: 256 * MiB }),
    maxStopGraceSeconds: Type.Integer({ minimum: 0, default: 300 }),
    /** Where the instance's private data dir appears inside the sandbox. */
    dataMount: Type.String({ pattern: '^/', default: '/data' }),
    /** Where an unpacked source appears inside the sandbox (the cwd of Procfile processes). */
    sourceMount: Type.String({ pattern: '^/', default: '/app' }),
  },
  { additionalProperties: false, default: {} },
);
export type InstancesConfig = Static<typeof InstancesConfigSchema>;
