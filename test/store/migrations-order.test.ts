/**
 * Upgrading a database: each area numbers its migrations in its own range, so a release may
 * bring a migration that sorts before ones the database already has (955_passkeys after
 * 962_group_quotas). It must still run, on both dialects.
 */
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
});
