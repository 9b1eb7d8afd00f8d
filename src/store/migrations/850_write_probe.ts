import type { Kysely } from 'kysely';

/**
 * One row /readyz rewrites to find out whether the database can still write (a full disk
 * answers reads but refuses writes). Store health takes 850–859.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('write_probe')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('written_at', 'bigint', (c) => c.notNull())
    .execute();
}
