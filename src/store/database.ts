/**
 * Opens the database (SQLite in the data directory, WAL), runs pending migrations and
 * refuses a database whose schema is newer than this code.
 */
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect, sql, type MigrationProvider } from 'kysely';
import { errors } from '../core/errors.js';
import { migrations } from './migrations/index.js';
import type { Database } from './schema.js';

export type Db = Kysely<Database>;

export async function openDatabase(dataDir: string): Promise<Db> {
  const file = path.join(dataDir, 'corral.db');
  let sqlite: SQLite.Database;
  try {
    sqlite = new SQLite(file);
  } catch (e) {
    throw errors.config(`cannot open database ${file}: ${(e as Error).message}`);
  }
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  try {
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
  const { error, results } = await new Migrator({ db, provider }).migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    throw errors.config(`database migration ${failed?.migrationName ?? ''} failed: ${(error as Error).message}`);
  }
}
