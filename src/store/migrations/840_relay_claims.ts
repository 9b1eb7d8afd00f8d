import type { Kysely } from 'kysely';

/**
 * Relay channel claims (src/core/relay/claims.ts): which user's hosts may connect to a
 * channel, kept across restarts. A user's claims go with the user. The relay takes 840–849.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('relay_claims')
    .addColumn('channel', 'text', (c) => c.primaryKey())
    .addColumn('owner_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('claimed_at', 'bigint', (c) => c.notNull())
    .addColumn('used_at', 'bigint', (c) => c.notNull())
    .execute();
}
