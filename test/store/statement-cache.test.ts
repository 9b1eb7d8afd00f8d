import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { cachingStatements } from '../../src/store/statement-cache.js';

describe('SQLite statements prepared once', () => {
  let raw: SQLite.Database;
  afterEach(() => raw?.open && raw.close());

  it('hands out the same statement for the same SQL, so a query is compiled once', () => {
    raw = new SQLite(':memory:');
    let prepared = 0;
    const prepare = raw.prepare.bind(raw);
    raw.prepare = ((sql: string) => (prepared++, prepare(sql))) as typeof raw.prepare;
    const db = cachingStatements(raw);
    const a = db.prepare('select 1 as x');
    expect(db.prepare('select 1 as x')).toBe(a);
    expect(db.prepare('select 2 as x')).not.toBe(a);
    expect(prepared).toBe(2);
  });

  it('gives a busy statement (an open iterator) a fresh one, so a query inside a streamed one still runs', () => {
    raw = new SQLite(':memory:');
    const db = cachingStatements(raw);
    raw.exec('create table t (n integer); insert into t values (1), (2), (3)');
    const it = db.prepare('select n from t where n > ?').iterate([0]);
    it.next();
    const other = db.prepare('select n from t where n > ?');
    expect(other.all([1])).toEqual([{ n: 2 }, { n: 3 }]);
    it.return?.();
  });

  it('keeps at most `max` statements, dropping the oldest', () => {
    raw = new SQLite(':memory:');
    const db = cachingStatements(raw, 2);
    const one = db.prepare('select 1');
    db.prepare('select 2');
    db.prepare('select 3');
    expect(db.prepare('select 1')).not.toBe(one);
  });

  it('runs Kysely queries, writes and reads, through reused statements', async () => {
    raw = new SQLite(':memory:');
    const k = new Kysely<{ t: { id: number; name: string } }>({ dialect: new SqliteDialect({ database: cachingStatements(raw) }) });
    await k.schema.createTable('t').addColumn('id', 'integer', (c) => c.primaryKey()).addColumn('name', 'text').execute();
    for (let i = 0; i < 3; i++) await k.insertInto('t').values({ id: i, name: `n${i}` }).execute();
    await k.updateTable('t').set({ name: 'x' }).where('id', '=', 1).execute();
    expect(await k.selectFrom('t').selectAll().orderBy('id').execute()).toEqual([
      { id: 0, name: 'n0' },
      { id: 1, name: 'x' },
      { id: 2, name: 'n2' },
    ]);
    // A streamed query (an iterator on the cached statement), twice: the statement is free again after.
    for (let round = 0; round < 2; round++) {
      const streamed: number[] = [];
      for await (const r of k.selectFrom('t').select('id').orderBy('id').stream()) streamed.push(r.id);
      expect(streamed).toEqual([0, 1, 2]);
    }
    await k.destroy();
  });
});
