/**
 * Sign-in ceremonies in the database (src/core/accounts/ceremonies.ts): taken once — of many
 * concurrent takes exactly one gets the value —, never after expiry, and a flood cut back to
 * a bound; on SQLite and PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ceremonies } from '../../src/core/accounts/ceremonies.js';
import type { Store } from '../../src/store/index.js';
import { storeDialects } from '../helpers/postgres.js';

describe.each(storeDialects)('sign-in ceremonies on $name', (dialect) => {
  let store: Store;
  let now = 1_000_000;
  let ceremonies: Ceremonies;
  beforeAll(async () => {
    store = await dialect.open();
    ceremonies = new Ceremonies(store.ceremonies, () => now);
  });
  afterAll(async () => store?.close());

  it('gives a value to exactly one of many concurrent takes, then to none', async () => {
    await ceremonies.put('login|t1', 'challenge-1', 60_000);
    const taken = await Promise.all(Array.from({ length: 20 }, () => ceremonies.take('login|t1')));
    expect(taken.filter((v) => v === 'challenge-1')).toHaveLength(1);
    expect(taken.filter((v) => v !== undefined)).toHaveLength(1);
    expect(await ceremonies.take('login|t1')).toBeUndefined();
  });

  it('refuses an expired value, and a put replaces what the key held', async () => {
    await ceremonies.put('register|s1', 'old', 60_000);
    await ceremonies.put('register|s1', 'new', 60_000);
    expect(await ceremonies.take('register|s1')).toBe('new');
    await ceremonies.put('register|s2', 'late', 1_000);
    now += 1_000;
    expect(await ceremonies.take('register|s2')).toBeUndefined();
  });

  it('stores the key only as a hash (keys carry cookie secrets)', async () => {
    await ceremonies.put('login|secret-ticket', 'c', 60_000);
    const keys = (await store.db.selectFrom('ceremonies').select('key').execute()).map((r) => r.key);
    expect(keys.some((k) => k.includes('secret-ticket'))).toBe(false);
    expect(await ceremonies.take('login|secret-ticket')).toBe('c');
  });

  it('sweeps expired ones, then cuts back to a bound keeping the latest to expire', async () => {
    for (let i = 0; i < 10; i++) await store.ceremonies.put(`k${i}`, 'v', now + 1_000 * (i + 1));
    await store.ceremonies.put('gone', 'v', now - 1);
    await store.ceremonies.sweep(now, 4);
    const left = (await store.db.selectFrom('ceremonies').select('key').orderBy('key').execute()).map((r) => r.key);
    expect(left).toEqual(['k6', 'k7', 'k8', 'k9']);
  });
});
