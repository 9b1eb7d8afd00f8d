/** Users' group memberships, each with its source (see migration 961_groups). */
import type { Db } from './database.js';

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
}
