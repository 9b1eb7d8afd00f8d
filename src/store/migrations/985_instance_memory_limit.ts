import type { Kysely } from 'kysely';

/**
 * The memory limit a spec sets itself, as a column (NULL: the server's default), and in the
 * owner/states index (the scale issue; 980–989): the quota check on every create sums the
 * running instances' memory from that index alone. It used to read the spec text of every
 * running row of the owner (a LIKE over JSON), which at 5,000 instances was most of a
 * create's time under the owner's lock.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('instances').addColumn('memory_limit', 'bigint').execute();
  const rows = await (db as Kysely<{ instances: { id: string; spec: string; memory_limit: number | null } }>)
    .selectFrom('instances')
    .select(['id', 'spec'])
    .where('spec', 'like', '%"memoryBytes"%')
    .execute();
  for (const r of rows) {
    const m = (JSON.parse(r.spec) as { limits?: { memoryBytes?: number } }).limits?.memoryBytes;
    if (m !== undefined) {
      await (db as Kysely<{ instances: { id: string; memory_limit: number | null } }>)
        .updateTable('instances')
        .set({ memory_limit: m })
        .where('id', '=', r.id)
        .execute();
    }
  }
  await db.schema.dropIndex('instances_owner_states').execute();
  await db.schema
    .createIndex('instances_owner_states')
    .on('instances')
    .columns(['owner_id', 'desired_state', 'observed_state', 'memory_limit'])
    .execute();
}
