/** Instance leases (several managers on one database): the same behaviour on SQLite and PostgreSQL. */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InstanceSpec } from '../../src/core/instances/spec.js';
import { SharedLeases } from '../../src/core/cluster/leases.js';
import type { Store } from '../../src/store/index.js';
import { storeDialects } from '../helpers/postgres.js';
import { storeWithOwner } from './store-with-owner.js';

describe.each(storeDialects)('leases on $name', (dialect) => {
  let store: Store;
  let owner: string;
  beforeAll(async () => {
    ({ store, owner } = await storeWithOwner(dialect));
  });
  afterAll(async () => store?.close());

  const instance = async () => {
    const id = randomUUID();
    const name = `i-${id.slice(0, 8)}`;
    await store.instances.insert({ id, ownerId: owner, name, spec: { name } as InstanceSpec, desiredState: 'running' });
    return id;
  };

  it('gives a lease to one manager until it expires, then to another', async () => {
    const id = await instance();
    expect(await store.leases.claim(id, 'a', 1000, 2000)).toBe(true);
    expect(await store.leases.claim(id, 'a', 1500, 2500)).toBe(true); // its own: renewed
    expect(await store.leases.claim(id, 'b', 2400, 3400)).toBe(false); // a's is fresh
    expect(await store.leases.claim(id, 'b', 2600, 3600)).toBe(true); // a's expired at 2500
    expect(await store.leases.claim(id, 'a', 2700, 3700)).toBe(false);
    expect((await store.leases.list()).find((l) => l.instanceId === id)).toEqual({ instanceId: id, managerId: 'b', expiresAt: 3600 });
  });

  it('lets exactly one of many racing managers win', async () => {
    const id = await instance();
    const wins = await Promise.all(['m1', 'm2', 'm3', 'm4', 'm5'].map((m) => store.leases.claim(id, m, 10, 100)));
    expect(wins.filter(Boolean)).toHaveLength(1);
  });

  it('renews, releases, and drops leases with their instance', async () => {
    const [x, y] = [await instance(), await instance()];
    await store.leases.claim(x, 'r', 0, 10);
    await store.leases.claim(y, 'r', 0, 10);
    const rows = await store.leases.renew('r', 99);
    expect(rows.filter((l) => l.managerId === 'r').map((l) => l.expiresAt)).toEqual([99, 99]);
    await store.leases.release('r', x);
    expect((await store.leases.list()).some((l) => l.instanceId === x)).toBe(false);
    await store.instances.delete(y);
    expect((await store.leases.list()).some((l) => l.instanceId === y)).toBe(false);
  });

  it('SharedLeases: held, refused while fresh, taken after expiry, lost to a takeover', async () => {
    let now = 1_000_000;
    const opts = (managerId: string) => ({ managerId, ttlMs: 3000, warn: () => undefined, now: () => now });
    const a = new SharedLeases(store.leases, opts('A'));
    const b = new SharedLeases(store.leases, opts('B'));
    const id = await instance();
    expect(await a.claim(id)).toBe('taken');
    expect(await a.claim(id)).toBe('held');
    expect(await b.claim(id)).toBe('refused');
    now += 3001; // A stopped renewing
    expect(await b.claim(id)).toBe('taken');
    const lost: string[][] = [];
    a.start((ids) => lost.push(ids));
    await new Promise((r) => setTimeout(r, 1300)); // a heartbeat (every ttl/3 = 1 s)
    await a.close();
    expect(lost).toEqual([[id]]);
    expect(await a.claim(id)).toBe('refused');
    await b.close(); // gives its leases up: anyone may take them at once
    const c = new SharedLeases(store.leases, opts('C'));
    expect(await c.claim(id)).toBe('taken');
    await c.close();
  });
});

describe('SharedLeases cut off from the database', () => {
  it('gives its instances up once their leases expire unrenewed', async () => {
    let now = 0;
    let failing = false;
    const store = {
      claim: async () => true,
      renew: async () => {
        if (failing) throw new Error('database away');
        return [{ instanceId: 'x', managerId: 'A', expiresAt: now + 3000 }];
      },
      list: async () => [],
      release: async () => undefined,
    };
    const leases = new SharedLeases(store as never, { managerId: 'A', ttlMs: 300, warn: () => undefined, now: () => now });
    expect(await leases.claim('x')).toBe('taken');
    const lost: string[][] = [];
    leases.start((ids) => lost.push(ids));
    failing = true;
    await new Promise((r) => setTimeout(r, 250)); // beats fail, but the lease (until 300) holds
    expect(lost).toEqual([]);
    now = 301;
    await new Promise((r) => setTimeout(r, 250));
    await leases.close();
    expect(lost).toEqual([['x']]);
  });
});
