import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';

/**
 * The credits ledger (append-only; every balance change is one row, written in the same
 * transaction as the change), metering marks (how far each metered run has been charged,
 * so metering resumes after a restart), per-user quota overrides, and credits a token
 * carries for its owner (claimed once, on first use). Runs on SQLite and PostgreSQL alike
 * ('double precision' is a float in both).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('ledger')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('amount', 'bigint', (c) => c.notNull()) // > 0 credit, < 0 debit
    .addColumn('balance', 'bigint', (c) => c.notNull()) // the user's balance after this row
    .addColumn('kind', 'text', (c) => c.notNull()) // grant | token | instance | job
    .addColumn('subject_id', 'text') // instance id, job id or token id
    .addColumn('subject_name', 'text') // instance name or runtime, for people
    .addColumn('seconds', 'double precision') // metered time this row pays for
    .addColumn('reason', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('ledger_user_at').on('ledger').columns(['user_id', 'at']).execute();

  await db.schema
    .createTable('meter_marks')
    .addColumn('subject_id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('run_started_at', 'bigint', (c) => c.notNull())
    .addColumn('charged_until', 'bigint', (c) => c.notNull())
    .addColumn('carry', 'double precision', (c) => c.notNull().defaultTo(0)) // fraction of a credit not yet debited
    .execute();

  await db.schema
    .createTable('user_quotas')
    .addColumn('user_id', 'text', (c) => c.primaryKey().references('users.id').onDelete('cascade'))
    .addColumn('instances', 'integer')
    .addColumn('running_instances', 'integer')
    .addColumn('memory_bytes', 'bigint')
    .addColumn('concurrent_jobs', 'integer')
    .execute();

  await db.schema.alterTable('tokens').addColumn('credits', 'bigint', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('tokens').addColumn('credits_claimed_at', 'bigint').execute();

  // Balances from before the ledger get an opening row, so balance = sum of the ledger.
  const anyDb = db as Kysely<any>;
  const users = await anyDb.selectFrom('users').select(['id', 'credits']).where('credits', '<>', 0).execute();
  for (const u of users as { id: string; credits: number }[]) {
    const credits = Number(u.credits);
    await anyDb
      .insertInto('ledger')
      .values({ id: randomUUID(), user_id: u.id, at: Date.now(), amount: credits, balance: credits, kind: 'grant', reason: 'opening balance' })
      .execute();
  }
}
