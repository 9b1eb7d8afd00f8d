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

  /**
   * Every group — one someone is in, or one with quotas set — with its members' names and
   * each membership's source, by group name. `only` narrows it to one group.
   */
  async overview(only?: string): Promise<{ group: string; members: { user: string; source: string }[]; quotas: QuotaOverrides }[]> {
    let members = this.db
      .selectFrom('user_groups')
      .innerJoin('users', 'users.id', 'user_groups.user_id')
      .select(['user_groups.group_name as group', 'users.name as user', 'user_groups.source as source'])
      .orderBy('user_groups.group_name')
      .orderBy('users.name')
      .orderBy('user_groups.source');
    let quotas = this.db.selectFrom('group_quotas').selectAll();
    if (only !== undefined) {
      members = members.where('user_groups.group_name', '=', only);
      quotas = quotas.where('group_name', '=', only);
    }
    const groups = new Map<string, { group: string; members: { user: string; source: string }[]; quotas: QuotaOverrides }>();
    const entry = (group: string) => groups.get(group) ?? groups.set(group, { group, members: [], quotas: {} }).get(group)!;
    for (const m of await members.execute()) entry(m.group).members.push({ user: m.user, source: m.source });
    for (const q of await quotas.execute()) entry(q.group_name).quotas = overridesOf(q);
    return [...groups.values()].sort((a, b) => (a.group < b.group ? -1 : a.group > b.group ? 1 : 0));
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
