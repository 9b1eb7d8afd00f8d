/** Per-user quota overrides; a null field means "the config default". */
import type { Db } from './database.js';

export interface UserQuotasTable {
  user_id: string;
  instances: number | null;
  running_instances: number | null;
  memory_bytes: number | null;
  concurrent_jobs: number | null;
}

export interface QuotaOverrides {
  instances?: number | null;
  runningInstances?: number | null;
  memoryBytes?: number | null;
  concurrentJobs?: number | null;
}

/** The quota columns a row of user_quotas or group_quotas holds. */
interface QuotaColumns {
  instances: number | null;
  running_instances: number | null;
  memory_bytes: number | null;
  concurrent_jobs: number | null;
}

/** A quota row's overrides (PostgreSQL hands bigints back as strings). */
export function overridesOf(r: QuotaColumns): QuotaOverrides {
  const n = (v: number | null) => (v == null ? null : Number(v));
  return { instances: n(r.instances), runningInstances: n(r.running_instances), memoryBytes: n(r.memory_bytes), concurrentJobs: n(r.concurrent_jobs) };
}

/** The columns a patch of overrides sets (undefined: left as it is; null: cleared). */
export function overrideColumns(patch: QuotaOverrides): Partial<QuotaColumns> {
  return {
    ...(patch.instances !== undefined && { instances: patch.instances }),
    ...(patch.runningInstances !== undefined && { running_instances: patch.runningInstances }),
    ...(patch.memoryBytes !== undefined && { memory_bytes: patch.memoryBytes }),
    ...(patch.concurrentJobs !== undefined && { concurrent_jobs: patch.concurrentJobs }),
  };
}

export class QuotaStore {
  constructor(private readonly db: Db) {}

  async get(userId: string): Promise<QuotaOverrides> {
    const r = await this.db.selectFrom('user_quotas').selectAll().where('user_id', '=', userId).executeTakeFirst();
    return r ? overridesOf(r) : {};
  }

  /** Merges `patch` into the user's overrides (null clears one). */
  async set(userId: string, patch: QuotaOverrides): Promise<void> {
    const values = overrideColumns(patch);
    await this.db
      .insertInto('user_quotas')
      .values({ user_id: userId, ...values })
      .onConflict((oc) => (Object.keys(values).length ? oc.column('user_id').doUpdateSet(values) : oc.column('user_id').doNothing()))
      .execute();
  }
}
