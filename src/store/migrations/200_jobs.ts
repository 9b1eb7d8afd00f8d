import type { Kysely } from 'kysely';
import { columnTypes } from '../dialect.js';

export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(db);
  await db.schema
    .createTable('jobs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('runtime', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull()) // queued | running | done
    .addColumn('spec', 'text', (c) => c.notNull()) // JSON: command, timeout, limits, network, output
    .addColumn('status', 'text') // ok | error | timeout | memory | output-limit | killed
    .addColumn('exit_code', 'integer')
    .addColumn('signal', 'text')
    .addColumn('stdout', t.bytes)
    .addColumn('stderr', t.bytes)
    .addColumn('stdout_truncated', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('stderr_truncated', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('wall_ms', t.double)
    .addColumn('cpu_ms', t.double)
    .addColumn('memory_peak_bytes', 'bigint')
    .addColumn('output_name', 'text')
    .addColumn('output_mime', 'text')
    .addColumn('output_data', t.bytes)
    .addColumn('note', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('started_at', 'bigint')
    .addColumn('finished_at', 'bigint')
    .addColumn('expires_at', 'bigint')
    .execute();
  await db.schema.createIndex('jobs_user_created').on('jobs').columns(['user_id', 'created_at']).execute();
  await db.schema.createIndex('jobs_expires').on('jobs').column('expires_at').execute();
}
