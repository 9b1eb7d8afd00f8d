/**
 * The two databases the store runs on — SQLite (a file in the data directory, the default)
 * and PostgreSQL (`databaseUrl: postgres://…`, for several corral servers) — and every
 * difference between them, in this one file. Everything else in the store is plain Kysely
 * that both dialects run unchanged:
 *
 * - column types: SQLite takes any name; PostgreSQL needs `bytea` for bytes and
 *   `double precision` for floats (see `columnTypes`, used by migrations);
 * - integers: PostgreSQL's int8 (bigint columns, count(*)) arrives as a string from `pg`;
 *   the pool parses it to a number, as SQLite gives it (times are ms, far below 2^53);
 * - errors: a duplicate key is told apart by `isUniqueViolation`, not by message text;
 * - text order: PostgreSQL databases for corral use the C collation, which orders like SQLite.
 */
import SQLite from 'better-sqlite3';
import { PostgresAdapter, PostgresDialect, type Dialect, type Kysely } from 'kysely';
import type pgModule from 'pg';
import { errors } from '../core/errors.js';
import { cachingStatements } from './statement-cache.js';
import { QueuedSqliteDialect } from './sqlite-queue.js';

export type DialectName = 'sqlite' | 'postgres';

/** True for the URLs that select PostgreSQL. */
export const isPostgresUrl = (url: string | undefined): url is string => !!url && /^postgres(ql)?:\/\//i.test(url);

/** SQLite in `file`, in WAL mode so readers never wait for the writer. */
export function sqliteDialect(file: string): Dialect {
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
  // Each SQL text is prepared once (statement-cache.ts), not on every query; the one
  // connection goes to waiting queries in turn (sqlite-queue.ts).
  return new QueuedSqliteDialect({ database: cachingStatements(sqlite) });
}

const INT8_OID = 20;

/**
 * A pooled PostgreSQL connection; int8 values come back as numbers like SQLite's. `pg` is
 * loaded only here: a server on SQLite does not carry it (~15 MB).
 */
export async function postgresDialect(url: string, maxConnections = 10): Promise<Dialect> {
  const pg = ((await import('pg')) as { default: typeof pgModule }).default;
  const types = {
    getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
      oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
  };
  const pool = new pg.Pool({ connectionString: url, max: maxConnections, types, connectionTimeoutMillis: 10_000 });
  // An idle connection the server drops must not crash the process; the next query reconnects.
  pool.on('error', () => undefined);
  return new PostgresDialect({ pool });
}

/** Which database `db` talks to (migrations get a bare Kysely and ask this). */
export function dialectOf(db: Kysely<any>): DialectName {
  return db.getExecutor().adapter instanceof PostgresAdapter ? 'postgres' : 'sqlite';
}

/** Column types whose names differ between the dialects. */
export function columnTypes(db: Kysely<any>): { bytes: 'blob' | 'bytea'; double: 'real' | 'double precision' } {
  return dialectOf(db) === 'postgres' ? { bytes: 'bytea', double: 'double precision' } : { bytes: 'blob', double: 'real' };
}

/** A unique or primary-key constraint refused an insert or update (either dialect). */
export function isUniqueViolation(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/** The URL without its password, for messages and logs. */
export function redactDatabaseUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '********';
    return u.toString();
  } catch {
    return 'postgres://…';
  }
}
