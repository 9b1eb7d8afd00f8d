/** SQLite's one connection, handed to waiting queries in turn (sqlite-queue.ts). */
import { rm } from 'node:fs/promises';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../../src/store/index.js';
import { tempDir } from '../helpers/server.js';

describe('queries waiting for the SQLite connection', () => {
  let store: Store;
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir('corral-sqlite-queue-');
    store = await Store.open(dir);
  });
  afterAll(async () => {
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('run in the order they asked, thousands at once, and each gets its own answer', async () => {
    const order: number[] = [];
    const answers = await Promise.all(
      Array.from({ length: 3000 }, async (_, i) => {
        const { rows } = await sql<{ v: number }>`select ${i} as v`.execute(store.db);
        order.push(i);
        return rows[0]!.v;
      }),
    );
    expect(answers).toEqual(Array.from({ length: 3000 }, (_, i) => i));
    expect(order).toEqual(answers);
  });

  it('keeps a transaction to itself: a query asked meanwhile runs after its commit', async () => {
    await sql`create table q (n integer)`.execute(store.db);
    let during: number | undefined;
    let seen: Promise<number> | undefined;
    await store.db.transaction().execute(async (tx) => {
      await sql`insert into q values (1)`.execute(tx);
      // Asked while the transaction holds the connection: it must wait for the commit.
      seen = sql<{ c: number }>`select count(*) as c from q`.execute(store.db).then((r) => Number(r.rows[0]!.c));
      await new Promise((r) => setTimeout(r, 20));
      await sql`insert into q values (2)`.execute(tx);
      during = Number((await sql<{ c: number }>`select count(*) as c from q`.execute(tx)).rows[0]!.c);
    });
    expect(during).toBe(2);
    expect(await seen).toBe(2);
  });
});
