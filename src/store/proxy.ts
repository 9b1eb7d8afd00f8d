import type { Db } from './database.js';
import type { Selectable } from 'kysely';
import type { ProxyInstancesTable } from './schema.js';

/** What the proxy keeps about an instance beyond its spec. */
export interface ProxySettings {
  instanceId: string;
  ownerName: string;
  instanceName: string;
  sharedWith: string[];
  /** Members of these groups may pass too. */
  sharedWithGroups: string[];
  idleTimeoutSeconds: number;
  startOnDemand: boolean;
  lastActivityAt: number | null;
}

const toSettings = (r: Selectable<ProxyInstancesTable>): ProxySettings => ({
  instanceId: r.instance_id,
  ownerName: r.owner_name,
  instanceName: r.instance_name,
  sharedWith: JSON.parse(r.shared_with) as string[],
  sharedWithGroups: JSON.parse(r.shared_with_groups) as string[],
  idleTimeoutSeconds: Number(r.idle_timeout_seconds),
  startOnDemand: Number(r.start_on_demand) === 1,
  lastActivityAt: r.last_activity_at === null ? null : Number(r.last_activity_at),
});

export class ProxyStore {
  constructor(private readonly db: Db) {}

  async settings(instanceId: string): Promise<ProxySettings | undefined> {
    const r = await this.db.selectFrom('proxy_instances').selectAll().where('instance_id', '=', instanceId).executeTakeFirst();
    return r && toSettings(r);
  }

  /** `sharedWithGroups` left out keeps the groups an instance is already shared with. */
  async upsert(s: Omit<ProxySettings, 'lastActivityAt' | 'sharedWithGroups'> & { sharedWithGroups?: string[] | undefined }): Promise<void> {
    const row = {
      instance_id: s.instanceId,
      owner_name: s.ownerName,
      instance_name: s.instanceName,
      shared_with: JSON.stringify(s.sharedWith),
      ...(s.sharedWithGroups && { shared_with_groups: JSON.stringify(s.sharedWithGroups) }),
      idle_timeout_seconds: s.idleTimeoutSeconds,
      start_on_demand: s.startOnDemand ? 1 : 0,
    };
    await this.db
      .insertInto('proxy_instances')
      .values({ ...row, last_activity_at: null })
      .onConflict((oc) => oc.column('instance_id').doUpdateSet(row))
      .execute();
  }

  /** Instances with an idle timeout: the culler's candidates. */
  async cullable(): Promise<ProxySettings[]> {
    const rows = await this.db.selectFrom('proxy_instances').selectAll().where('idle_timeout_seconds', '>', 0).execute();
    return rows.map(toSettings);
  }

  async recordActivity(activity: Map<string, number>): Promise<void> {
    if (!activity.size) return;
    await this.db.transaction().execute(async (tx) => {
      for (const [id, at] of activity) {
        await tx.updateTable('proxy_instances').set({ last_activity_at: at }).where('instance_id', '=', id).execute();
      }
    });
  }

  async defaultFor(userId: string): Promise<ProxySettings | undefined> {
    const r = await this.db
      .selectFrom('proxy_defaults')
      .innerJoin('proxy_instances', 'proxy_instances.instance_id', 'proxy_defaults.instance_id')
      .selectAll('proxy_instances')
      .where('proxy_defaults.user_id', '=', userId)
      .executeTakeFirst();
    return r && toSettings(r);
  }

  async setDefault(userId: string, instanceId: string | null): Promise<void> {
    if (instanceId === null) {
      await this.db.deleteFrom('proxy_defaults').where('user_id', '=', userId).execute();
      return;
    }
    await this.db
      .insertInto('proxy_defaults')
      .values({ user_id: userId, instance_id: instanceId })
      .onConflict((oc) => oc.column('user_id').doUpdateSet({ instance_id: instanceId }))
      .execute();
  }
}
