/**
 * Upgrading a database: each area numbers its migrations in its own range, so a release may
 * bring a migration that sorts before ones the database already has (955_passkeys after
 * 962_group_quotas). It must still run, on both dialects.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { migrations } from '../../src/store/migrations/index.js';
import { Store } from '../../src/store/index.js';
import { storeDialects } from '../helpers/postgres.js';

describe.each(storeDialects)('an upgrade on $name', (dialect) => {
  it('runs a new migration that sorts before the last one applied', async () => {
    const { dataDir, databaseUrl } = await dialect.location();
    // The database as the previous release left it: every migration but the passkeys' one.
    const store = await Store.open(dataDir, databaseUrl);
    await store.db.schema.dropTable('passkey_sessions').execute();
    await store.db.schema.dropTable('passkeys').execute();
    await sql`delete from kysely_migration where name = '955_passkeys'`.execute(store.db);
    await store.close();

    const upgraded = await Store.open(dataDir, databaseUrl);
    const names = (await sql<{ name: string }>`select name from kysely_migration order by name`.execute(upgraded.db)).rows.map((r) => r.name);
    expect(names).toEqual(Object.keys(migrations).sort());
    expect(await upgraded.db.selectFrom('passkeys').selectAll().execute()).toEqual([]);
    await upgraded.close();
  });

  it('985 fills the new memory column from the specs already stored', async () => {
    const { dataDir, databaseUrl } = await dialect.location();
    const store = await Store.open(dataDir, databaseUrl);
    const owner = (await store.users.insert({ id: randomUUID(), name: 'owner', role: 'user', passwordHash: 'x', credits: 0 })).id;
    const spec = (name: string, limits: object) => ({ name, command: ['sleep', '1'], limits }) as never;
    const [limited, unlimited] = [randomUUID(), randomUUID()];
    await store.instances.insert({ id: limited, ownerId: owner, name: 'limited', spec: spec('limited', { memoryBytes: 3 * 2 ** 30 }), desiredState: 'running' });
    await store.instances.insert({ id: unlimited, ownerId: owner, name: 'unlimited', spec: spec('unlimited', { cpus: 1 }), desiredState: 'running' });
    // The database as the release before 985 left it: no column, the index without it.
    await store.db.schema.dropIndex('instances_owner_states').execute();
    await store.db.schema.alterTable('instances').dropColumn('memory_limit').execute();
    await store.db.schema.createIndex('instances_owner_states').on('instances').columns(['owner_id', 'desired_state', 'observed_state']).execute();
    await sql`delete from kysely_migration where name = '985_instance_memory_limit'`.execute(store.db);
    await store.close();

    const upgraded = await Store.open(dataDir, databaseUrl);
    const rows = await sql<{ id: string; memory_limit: number | string | null }>`select id, memory_limit from instances`.execute(upgraded.db);
    const byId = Object.fromEntries(rows.rows.map((r) => [r.id, r.memory_limit === null ? null : Number(r.memory_limit)]));
    expect(byId).toEqual({ [limited]: 3 * 2 ** 30, [unlimited]: null });
    await upgraded.close();
  });
});
