import type { Kysely } from 'kysely';

/**
 * Login throttling state (src/core/accounts/throttle.ts), kept in the database so a lock-out
 * survives a restart and holds across servers sharing one PostgreSQL. One row per key: a
 * client address, a user name, or the pair of both. Accounts' later work takes 820–839.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('login_throttle')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('failures', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('pending', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('locks', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('locked_until', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('last_failure', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('last_attempt', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.createIndex('login_throttle_last_attempt').on('login_throttle').column('last_attempt').execute();
}
