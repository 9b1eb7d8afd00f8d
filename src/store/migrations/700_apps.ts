import type { Kysely } from 'kysely';

/**
 * Apps (src/core/apps): the app, its numbered releases, and which instance runs which copy
 * of which release. Apps take the 700 range.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('apps')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('owner_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('formation', 'text', (c) => c.notNull())
    .addColumn('settings', 'text', (c) => c.notNull())
    .addColumn('config_vars', 'text', (c) => c.notNull())
    .addColumn('current_version', 'integer')
    .addColumn('next_version', 'integer', (c) => c.notNull())
    .addColumn('switch', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addUniqueConstraint('apps_owner_name', ['owner_id', 'name'])
    .execute();
  await db.schema
    .createTable('app_releases')
    .addColumn('app_id', 'text', (c) => c.notNull().references('apps.id').onDelete('cascade'))
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('finished_at', 'bigint')
    .addColumn('process_types', 'text', (c) => c.notNull())
    .addColumn('release_command', 'text')
    .addColumn('settings', 'text', (c) => c.notNull())
    .addColumn('config_vars', 'text', (c) => c.notNull())
    .addColumn('archive', 'text')
    .addColumn('error', 'text')
    .addColumn('logs', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('app_releases_pk', ['app_id', 'version'])
    .execute();
  await db.schema
    .createTable('app_copies')
    .addColumn('owner_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('instance_name', 'text', (c) => c.notNull())
    .addColumn('app_id', 'text', (c) => c.notNull().references('apps.id').onDelete('cascade'))
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('process_type', 'text', (c) => c.notNull())
    .addColumn('copy_index', 'integer', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('app_copies_pk', ['owner_id', 'instance_name'])
    .execute();
  await db.schema.createIndex('app_copies_app').on('app_copies').column('app_id').execute();
}
