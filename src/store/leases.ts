/** Instance leases: which manager supervises which instance, until when (see core/cluster). */
import type { Db } from './database.js';

export interface LeaseRow {
  instanceId: string;
  managerId: string;
  expiresAt: number;
}

export class LeaseStore {
  constructor(private readonly db: Db) {}

  /**
   * Takes the lease on an instance when it is free, expired, or already `managerId`'s, in
   * one statement, so two managers racing for it cannot both win. True when it is ours now.
   */
  async claim(instanceId: string, managerId: string, now: number, expiresAt: number): Promise<boolean> {
    const r = await this.db
      .insertInto('instance_leases')
      .values({ instance_id: instanceId, manager_id: managerId, expires_at: expiresAt })
      .onConflict((oc) =>
        oc
          .column('instance_id')
          .doUpdateSet({ manager_id: managerId, expires_at: expiresAt })
          .where((eb) =>
            eb.or([eb('instance_leases.manager_id', '=', managerId), eb('instance_leases.expires_at', '<', now)]),
          ),
      )
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  /** Extends every lease `managerId` holds; returns every lease there is, after the renewal. */
  async renew(managerId: string, expiresAt: number): Promise<LeaseRow[]> {
    await this.db.updateTable('instance_leases').set({ expires_at: expiresAt }).where('manager_id', '=', managerId).execute();
    return this.list();
  }

  async list(): Promise<LeaseRow[]> {
    const rows = await this.db.selectFrom('instance_leases').selectAll().orderBy('instance_id').execute();
    return rows.map((r) => ({ instanceId: r.instance_id, managerId: r.manager_id, expiresAt: Number(r.expires_at) }));
  }

  /** Gives up one lease (or all of a manager's): another manager may take them at once. */
  async release(managerId: string, instanceId?: string): Promise<void> {
    let q = this.db.deleteFrom('instance_leases').where('manager_id', '=', managerId);
    if (instanceId !== undefined) q = q.where('instance_id', '=', instanceId);
    await q.execute();
  }
}
