/** Migrations on both dialects: every one applies, reopening is a no-op, a newer schema is refused. */
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { migrations } from '../../src/store/migrations/index.js';
import { Store } from '../../src/store/index.js';
import { storeDialects } from '../helpers/postgres.js';

describe.each(storeDialects)('migrations on $name', (dialect) => {
  it('apply once, and a newer schema is refused with a clear error', async () => {
    const { dataDir, databaseUrl } = await dialect.location();
    const first = await Store.open(dataDir, databaseUrl);
    const applied = async (s: Store) =>
      (await sql<{ name: string }>`select name from kysely_migration order by name`.execute(s.db)).rows.map((r) => r.name);
    expect(await applied(first)).toEqual(Object.keys(migrations).sort());
    await first.close();

    const again = await Store.open(dataDir, databaseUrl);
    expect(await applied(again)).toEqual(Object.keys(migrations).sort());
    await sql`insert into kysely_migration (name, timestamp) values ('999_from_the_future', '2030-01-01T00:00:00.000Z')`.execute(again.db);
    await again.close();

    await expect(Store.open(dataDir, databaseUrl)).rejects.toThrow(/newer than this corral.*999_from_the_future/);
  });
});

describe('a PostgreSQL server that does not answer', () => {
  it('is a config error naming the URL without its password', async () => {
    const err = (await Store.open('/nonexistent', 'postgres://corral:s3cret@127.0.0.1:1/corral').then(
      () => new Error('opened'),
      (e: unknown) => e,
    )) as Error;
    expect(err).toMatchObject({ code: 'config_invalid' });
    expect(err.message).toMatch(/cannot connect to postgres:\/\/corral:\*+@127\.0\.0\.1:1\/corral/);
    expect(err.message).not.toContain('s3cret');
  });
});
