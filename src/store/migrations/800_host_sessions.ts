import type { Kysely } from 'kysely';

/**
 * Logins to instance hosts (src/proxy/host-login.ts): one-time codes minted on the main
 * origin, and the sessions they are exchanged for on an instance host. Both belong to a
 * main session and go with it (logout, expiry sweep, user deletion).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('host_login_codes')
    .addColumn('code_hash', 'text', (c) => c.primaryKey())
    .addColumn('session_hash', 'text', (c) => c.notNull().references('sessions.id_hash').onDelete('cascade'))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('host_label', 'text', (c) => c.notNull())
    .addColumn('next', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('host_sessions')
    .addColumn('id_hash', 'text', (c) => c.primaryKey())
    .addColumn('session_hash', 'text', (c) => c.notNull().references('sessions.id_hash').onDelete('cascade'))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('host_label', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('host_sessions_session').on('host_sessions').column('session_hash').execute();
  await db.schema.createIndex('host_login_codes_session').on('host_login_codes').column('session_hash').execute();
}
