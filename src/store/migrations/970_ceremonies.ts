import type { Kysely } from 'kysely';

/**
 * Sign-in ceremonies under way (a passkey challenge, an OIDC sign-in's state), in the database
 * so that a ceremony begun on one manager can end on another (970–979).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('ceremonies')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('value', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('ceremonies_expires_at').on('ceremonies').column('expires_at').execute();
}
