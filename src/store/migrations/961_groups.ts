import type { Kysely } from 'kysely';

/**
 * Groups (the sign-in issue; 960–989): a user's memberships, each from a source — an
 * identity provider (`oidc:{id}`, replaced at each sign-in) or `admin` (set through the
 * API/CLI) — and the groups an instance is shared with through the proxy.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('user_groups')
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('group_name', 'text', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('user_groups_pk', ['user_id', 'group_name', 'source'])
    .execute();
  await db.schema.createIndex('user_groups_group').on('user_groups').column('group_name').execute();
  await db.schema
    .alterTable('proxy_instances')
    .addColumn('shared_with_groups', 'text', (c) => c.notNull().defaultTo('[]'))
    .execute();
}
