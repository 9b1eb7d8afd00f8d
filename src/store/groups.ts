/** Users' group memberships, each with its source (see migration 961_groups). */
import type { Db } from './database.js';
import { overrideColumns, overridesOf, type QuotaOverrides } from './quotas.js';

export interface GroupQuotasTable {
  group_name: string;
  instances: number | null;
  running_instances: number | null;
  memory_bytes: number | null;
  concurrent_jobs: number | null;
}

export interface UserGroupsTable {
  user_id: string;
  group_name: string;
  source: string;
}

export interface Membership {
  group: string;
  source: string;
}

export class GroupStore {
  constructor(private readonly db: Db) {}

  async of(userId: string): Promise<Membership[]> {
    const rows = await this.db.selectFrom('user_groups').select(['group_name', 'source']).where('user_id', '=', userId).orderBy('group_name').execute();
    return rows.map((r) => ({ group: r.group_name, source: r.source }));
  }

  /** Replaces the memberships one source gave the user (a provider at sign-in, or an admin). */
  async set(userId: string, source: string, groups: string[]): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx.deleteFrom('user_groups').where('user_id', '=', userId).where('source', '=', source).execute();
      const unique = [...new Set(groups)];
      if (unique.length) await tx.insertInto('user_groups').values(unique.map((g) => ({ user_id: userId, group_name: g, source }))).execute();
    });
  }

  /** The ids of the group's members, whatever the source. */
  async members(group: string): Promise<string[]> {
    const rows = await this.db.selectFrom('user_groups').select('user_id').distinct().where('group_name', '=', group).orderBy('user_id').execute();
    return rows.map((r) => r.user_id);
  }

  /** Each of the groups' quota overrides (groups without any are left out). */
  async quotas(groups: string[]): Promise<QuotaOverrides[]> {
    if (!groups.length) return [];
    const rows = await this.db.selectFrom('group_quotas').selectAll().where('group_name', 'in', groups).execute();
    return rows.map(overridesOf);
  }

  /** Merges `patch` into the group's quotas (null clears one). */
  async setQuotas(group: string, patch: QuotaOverrides): Promise<void> {
    const values = overrideColumns(patch);
    await this.db
      .insertInto('group_quotas')
      .values({ group_name: group, ...values })
      .onConflict((oc) => (Object.keys(values).length ? oc.column('group_name').doUpdateSet(values) : oc.column('group_name').doNothing()))
      .execute();
  }
}
