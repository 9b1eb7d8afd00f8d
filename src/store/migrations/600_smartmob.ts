import type { Kysely } from 'kysely';

/**
 * smartmob-agent processes (src/compat/smartmob): the old API's slug, app and node of each
 * instance it created, so its registry survives a restart (the old agent lost it).
 * Compat adapters take the 600 range.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('smartmob_processes')
    .addColumn('owner_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('slug', 'text', (c) => c.notNull())
    .addColumn('instance_id', 'text', (c) => c.notNull())
    .addColumn('app', 'text', (c) => c.notNull())
    .addColumn('node', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('smartmob_processes_pk', ['owner_id', 'slug'])
    .execute();
}
