import type { Kysely } from 'kysely';

/** Quotas per group (the sign-in issue; 960–989): a null field leaves that quota to others. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('group_quotas')
    .addColumn('group_name', 'text', (c) => c.primaryKey())
    .addColumn('instances', 'bigint')
    .addColumn('running_instances', 'bigint')
    .addColumn('memory_bytes', 'bigint')
    .addColumn('concurrent_jobs', 'bigint')
    .execute();
}
