/**
 * The `credits` and `quotas` sections of the config: what metering costs and how often it
 * is written, and the per-user limits every user gets unless an admin sets their own.
 */
import { Type, type Static } from '@sinclair/typebox';

const GiB = 1024 * 1024 * 1024;

const Metering = (description: string) =>
  Type.Object(
    {
      /** Whether work of this kind is metered when it does not say (instances can). */
      metered: Type.Boolean({ default: false, description }),
      creditsPerSecond: Type.Number({ minimum: 0, default: 1 }),
    },
    { additionalProperties: false, default: {} },
  );

export const CreditsConfigSchema = Type.Object(
  {
    /** Running metered instances are debited this often (and at stop): a crash loses at most this much. */
    intervalSeconds: Type.Number({ minimum: 0.2, maximum: 3600, default: 5 }),
    instances: Metering('instances are metered unless their spec says otherwise'),
    jobs: Metering('jobs are metered (per started second of wall time)'),
  },
  { additionalProperties: false, default: {} },
);
export type CreditsConfig = Static<typeof CreditsConfigSchema>;

/** 0 means "no limit". */
const Limit = (def: number, description: string) => Type.Integer({ minimum: 0, default: def, description });

export const QuotasSchema = Type.Object(
  {
    instances: Limit(100, 'instances a user may have'),
    runningInstances: Limit(50, 'instances a user may have running (or wanting to run) at once'),
    memoryBytes: Limit(64 * GiB, 'sum of the memory limits of a user’s running instances'),
    concurrentJobs: Limit(64, 'jobs a user may have queued or running at once'),
  },
  { additionalProperties: false, default: {} },
);
export type Quotas = Static<typeof QuotasSchema>;
export const QUOTA_NAMES = ['instances', 'runningInstances', 'memoryBytes', 'concurrentJobs'] as const;
export type QuotaName = (typeof QUOTA_NAMES)[number];
