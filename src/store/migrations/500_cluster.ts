import type { Kysely } from 'kysely';

/**
 * Leases: which manager supervises which instance, until when. Several managers sharing one
 * PostgreSQL database each renew their own rows; an expired row may be taken by another.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('instance_leases')
    .addColumn('instance_id', 'text', (c) => c.primaryKey().references('instances.id').onDelete('cascade'))
    .addColumn('manager_id', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('instance_leases_manager').on('instance_leases').column('manager_id').execute();
}
