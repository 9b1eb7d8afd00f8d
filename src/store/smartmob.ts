/** smartmob-agent processes: which instance each old-API slug of a user stands for. */
import type { Db } from './database.js';

export interface SmartmobProcessesTable {
  owner_id: string;
  slug: string;
  instance_id: string;
  app: string;
  node: string;
  created_at: number;
}

export interface SmartmobProcess {
  ownerId: string;
  slug: string;
  instanceId: string;
  app: string;
  node: string;
}

const toProcess = (r: SmartmobProcessesTable): SmartmobProcess => ({
  ownerId: r.owner_id,
  slug: r.slug,
  instanceId: r.instance_id,
  app: r.app,
  node: r.node,
});

export class SmartmobStore {
  constructor(private readonly db: Db) {}

  /** False when the owner already has this slug. */
  async insert(p: SmartmobProcess): Promise<boolean> {
    const r = await this.db
      .insertInto('smartmob_processes')
      .values({ owner_id: p.ownerId, slug: p.slug, instance_id: p.instanceId, app: p.app, node: p.node, created_at: Date.now() })
      .onConflict((oc) => oc.columns(['owner_id', 'slug']).doNothing())
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  async get(ownerId: string, slug: string): Promise<SmartmobProcess | undefined> {
    const r = await this.db
      .selectFrom('smartmob_processes')
      .selectAll()
      .where('owner_id', '=', ownerId)
      .where('slug', '=', slug)
      .executeTakeFirst();
    return r && toProcess(r);
  }

  /** The owner's processes, oldest first. */
  async list(ownerId: string): Promise<SmartmobProcess[]> {
    const rows = await this.db
      .selectFrom('smartmob_processes')
      .selectAll()
      .where('owner_id', '=', ownerId)
      .orderBy('created_at')
      .orderBy('slug')
      .execute();
    return rows.map(toProcess);
  }

  async delete(ownerId: string, slug: string): Promise<void> {
    await this.db.deleteFrom('smartmob_processes').where('owner_id', '=', ownerId).where('slug', '=', slug).execute();
  }
}
