/**
 * Opens the database (SQLite in the data directory, WAL; or PostgreSQL when a
 * `postgres://` URL is given), runs pending migrations and refuses a database whose schema
 * is newer than this code. Dialect differences live in dialect.ts.
 */
import path from 'node:path';
import { Kysely, Migrator, sql, type MigrationProvider } from 'kysely';
import { errors } from '../core/errors.js';
import { isPostgresUrl, postgresDialect, redactDatabaseUrl, sqliteDialect } from './dialect.js';
import { migrations } from './migrations/index.js';
import type { Database } from './schema.js';

export type Db = Kysely<Database>;

export async function openDatabase(dataDir: string, databaseUrl?: string): Promise<Db> {
  const postgres = isPostgresUrl(databaseUrl);
  const dialect = postgres ? await postgresDialect(databaseUrl) : sqliteDialect(path.join(dataDir, 'corral.db'));
  const db = new Kysely<Database>({ dialect });
  try {
    if (postgres) await sql`select 1`.execute(db).catch((e: unknown) => {
      throw errors.config(`cannot connect to ${redactDatabaseUrl(databaseUrl)}: ${(e as Error).message}`);
    });
    await migrate(db);
  } catch (e) {
    await db.destroy();
    throw e;
  }
  return db;
}

const provider: MigrationProvider = { getMigrations: async () => migrations };

async function migrate(db: Db): Promise<void> {
  const known = new Set(Object.keys(migrations));
  // Migrations this code does not know were applied by a newer corral.
  const { rows } = await sql<{ name: string }>`select name from kysely_migration`
    .execute(db)
    .catch(() => ({ rows: [] as { name: string }[] }));
  const newer = rows.map((r) => r.name).filter((n) => !known.has(n));
  if (newer.length) {
    throw errors.config(
      `the database schema is newer than this corral (unknown migrations: ${newer.join(', ')}); upgrade corral`,
    );
  }
  // Each area numbers its migrations in its own range (migrations/index.ts), so a new one may
  // sort before others a database already has (955 after 962): it is run all the same.
  const { error, results } = await new Migrator({ db, provider, allowUnorderedMigrations: true }).migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    throw errors.config(`database migration ${failed?.migrationName ?? ''} failed: ${(error as Error).message}`);
  }
}

export interface WriteProbeTable {
  id: number; // always 1
  written_at: number;
}

/**
 * Rewrites the one probe row: throws when the database cannot write (a full disk still answers
 * reads). Cheap: one row, one page.
 */
export async function probeWrite(db: Db, now = Date.now()): Promise<void> {
  await db
    .insertInto('write_probe')
    .values({ id: 1, written_at: now })
    .onConflict((oc) => oc.column('id').doUpdateSet({ written_at: now }))
    .execute();
}
