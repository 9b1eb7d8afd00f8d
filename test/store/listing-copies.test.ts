/**
 * The listing keeps each instance's JSON and reads again only what changed (listing.ts): a
 * kept copy must never outlive a write, even one in the same millisecond as the copy (the
 * write stamp alone cannot tell those apart), nor a write that lands while a listing reads.
 * On SQLite and PostgreSQL.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { InstanceListing } from '../../src/core/instances/listing.js';
import type { InstanceSpec } from '../../src/core/instances/spec.js';
import type { Store } from '../../src/store/index.js';
import { storeDialects } from '../helpers/postgres.js';
import { storeWithOwner } from './store-with-owner.js';

const spec = (name: string) => ({ name, command: ['sleep', '1'], env: {}, ports: [] }) as unknown as InstanceSpec;

describe.each(storeDialects)('listing copies on $name', (dialect) => {
  let store: Store;
  let owner: string;
  let listing: InstanceListing;
  const list = async (ownerId?: string) => (JSON.parse((await listing.json(ownerId)).toString()) as { instances: any[] }).instances;
  const add = async (name: string, ownerId = owner) => {
    const id = randomUUID();
    await store.instances.insert({ id, ownerId, name, spec: spec(name), desiredState: 'running' });
    return id;
  };

  beforeAll(async () => {
    ({ store, owner } = await storeWithOwner(dialect));
    listing = new InstanceListing(store.instances);
  });
  afterAll(async () => store?.close());
  afterEach(() => vi.restoreAllMocks());

  it('shows every kind of write at once, though the clock has not moved since the copy was made', async () => {
    vi.spyOn(Date, 'now').mockReturnValue(1_700_000_000_000); // every write stamps the same updated_at
    const id = await add('frozen');
    expect((await list(owner)).find((i) => i.id === id)).toMatchObject({ state: 'pending', desiredState: 'running' });
    await store.instances.updateObserved(id, { state: 'running', ports: [{ name: 'web', hostPort: 4100 }] });
    expect((await list(owner)).find((i) => i.id === id)).toMatchObject({ state: 'running', ports: [{ name: 'web', hostPort: 4100 }] });
    await store.instances.setDesired(id, 'stopped');
    expect((await list()).find((i) => i.id === id)).toMatchObject({ desiredState: 'stopped' });
    await store.instances.updateSpec(id, { ...spec('thawed'), env: { A: '1' } }, 'thawed');
    expect((await list(owner)).find((i) => i.id === id)).toMatchObject({ name: 'thawed', spec: { name: 'thawed', env: { A: '1' } } });
    await store.instances.delete(id);
    expect((await list(owner)).find((i) => i.id === id)).toBeUndefined();
  });

  it('does not keep a row read while a write of it lands', async () => {
    vi.spyOn(Date, 'now').mockReturnValue(1_700_000_100_000);
    const id = await add('raced');
    const read = store.instances.listStored.bind(store.instances);
    // The write lands after the row was read and before the listing keeps it.
    const spy = vi.spyOn(store.instances, 'listStored').mockImplementationOnce(async (...args) => {
      const rows = await read(...args);
      await store.instances.updateObserved(id, { state: 'failed', lastError: 'raced' });
      return rows;
    });
    expect((await list(owner)).find((i) => i.id === id)).toMatchObject({ state: 'pending' });
    spy.mockRestore();
    expect((await list(owner)).find((i) => i.id === id)).toMatchObject({ state: 'failed', lastError: 'raced' });
  });

  it('reads again a row another process wrote (its stamp moved), and drops the instances of a deleted owner', async () => {
    const other = (await store.users.insert({ id: randomUUID(), name: `other-${randomUUID().slice(0, 8)}`, role: 'user', passwordHash: 'x', credits: 0 })).id;
    const theirs = await add('theirs', other);
    const mine = await add('mine');
    expect((await list()).map((i) => i.id)).toEqual(expect.arrayContaining([theirs, mine]));
    // Another corral on the same database writes it: straight to the table, this store is not told.
    await store.db.updateTable('instances').set({ observed_state: 'running', updated_at: Date.now() + 1000 }).where('id', '=', mine).execute();
    expect((await list()).find((i) => i.id === mine)).toMatchObject({ state: 'running' });
    await store.users.delete(other); // its instances go with it (foreign key, no store write of theirs)
    const after = await list();
    expect(after.map((i) => i.id)).not.toContain(theirs);
    expect(after.find((i) => i.id === mine)).toBeDefined();
  });

  it('lists in creation order, one owner’s or everyone’s, with the same documents either way', async () => {
    const second = (await store.users.insert({ id: randomUUID(), name: `second-${randomUUID().slice(0, 8)}`, role: 'user', passwordHash: 'x', credits: 0 })).id;
    const a = await add('order-a', second);
    await new Promise((r) => setTimeout(r, 2));
    const b = await add('order-b', second);
    const theirs = await list(second);
    expect(theirs.map((i) => i.id)).toEqual([a, b]);
    const all = await list();
    expect(all.filter((i) => i.owner === theirs[0].owner)).toEqual(theirs);
    expect(all.every((i) => i.owner !== theirs[0].owner || [a, b].includes(i.id))).toBe(true);
  });
});
