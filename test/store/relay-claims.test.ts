/** Relay channel claims and the write probe: the same behaviour on SQLite and PostgreSQL. */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/index.js';
import { storeDialects } from '../helpers/postgres.js';
import { storeWithOwner } from './store-with-owner.js';

describe.each(storeDialects)('relay claims on $name', (dialect) => {
  let store: Store;
  let alice: string;
  let bob: string;
  beforeAll(async () => {
    ({ store, owner: alice } = await storeWithOwner(dialect));
    bob = (await store.users.insert({ id: randomUUID(), name: 'bob', role: 'user', passwordHash: 'x', credits: 0 })).id;
  });
  afterAll(async () => store?.close());

  it('keeps a channel its first claimant’s until the claim lapses, counted from its last use', async () => {
    const claims = store.relayClaims;
    expect(await claims.claim('api/c', alice, 1000, 500)).toBe(alice);
    expect(await claims.claim('api/c', bob, 1400, 500)).toBe(alice);
    await claims.touch('api/c', alice, 1400);
    expect(await claims.claim('api/c', bob, 1800, 500)).toBe(alice); // used at 1400: fresh until 1900
    expect(await claims.holder('api/c', 1800, 500)).toBe(alice);
    expect(await claims.holder('api/c', 2000, 500)).toBeNull();
    expect(await claims.claim('api/c', bob, 2000, 500)).toBe(bob);
    expect(await claims.claim('api/c', alice, 2100, 500)).toBe(bob);
    // 0: never lapses.
    expect(await claims.claim('api/d', alice, 1, 0)).toBe(alice);
    expect(await claims.claim('api/d', bob, 10 ** 12, 0)).toBe(alice);
    expect(await claims.holder('api/d', 10 ** 12, 0)).toBe(alice);
  });

  it('lets exactly one of racing users claim a free channel', async () => {
    const winners = await Promise.all([alice, bob, alice, bob].map((u) => store.relayClaims.claim('api/race', u, 5, 100)));
    expect(new Set(winners).size).toBe(1);
  });

  it('writes the probe row again and again', async () => {
    await store.probeWrite();
    await store.probeWrite();
  });
});
