import type { Kysely } from 'kysely';

/** Proxy-owned data about instances: sharing, default instance, idle timeout, last activity. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('proxy_instances')
    .addColumn('instance_id', 'text', (c) => c.primaryKey())
    .addColumn('owner_name', 'text', (c) => c.notNull())
    .addColumn('instance_name', 'text', (c) => c.notNull())
    .addColumn('shared_with', 'text', (c) => c.notNull().defaultTo('[]')) // JSON array of user ids
    .addColumn('idle_timeout_seconds', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('start_on_demand', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_activity_at', 'bigint')
    .execute();
  await db.schema
    .createTable('proxy_defaults')
    .addColumn('user_id', 'text', (c) => c.primaryKey().references('users.id').onDelete('cascade'))
    .addColumn('instance_id', 'text', (c) => c.notNull())
    .execute();
}
