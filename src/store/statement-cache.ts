/**
 * SQLite statements prepared once per SQL text. Kysely's SQLite driver calls `prepare` for
 * every query it runs; compiling the same few statements again on every request (a job
 * runs about ten: token, user, quota, insert, running, result…) was a large share of the
 * server's CPU per job. better-sqlite3 statements can be run again and again; one that is
 * busy (an open iterator of a streamed query) is not handed out twice — that query gets a
 * fresh statement. Kysely passes values as parameters, so the SQL texts are few; the cache
 * still has a bound (oldest dropped first) for queries built with varying shapes (`in` lists).
 */
import type SQLite from 'better-sqlite3';
import type { SqliteDatabase, SqliteStatement } from 'kysely';

/** Statements kept at most. */
const MAX_STATEMENTS = 500;

export function cachingStatements(db: SQLite.Database, max = MAX_STATEMENTS): SqliteDatabase {
  const cache = new Map<string, SQLite.Statement>();
  return {
    close: () => {
      cache.clear();
      db.close();
    },
    prepare(sql: string): SqliteStatement {
      const cached = cache.get(sql);
      if (cached && !cached.busy) return cached as unknown as SqliteStatement;
      const stmt = db.prepare(sql);
      if (!cached) {
        if (cache.size >= max) cache.delete(cache.keys().next().value!);
        cache.set(sql, stmt);
      }
      return stmt as unknown as SqliteStatement;
    },
  };
}
