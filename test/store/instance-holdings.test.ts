/** What an owner holds against the instance quotas, read from the owner/states index: the same on SQLite and PostgreSQL. */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InstanceSpec } from '../../src/core/instances/spec.js';
import type { Store } from '../../src/store/index.js';
import { storeDialects } from '../helpers/postgres.js';
import { storeWithOwner } from './store-with-owner.js';

const spec = (name: string, memoryBytes?: number) =>
  ({ name, command: ['sleep', '1'], env: {}, ports: [], ...(memoryBytes && { limits: { memoryBytes } }) }) as unknown as InstanceSpec;
const ended = ['exited' as const, 'failed' as const];

describe.each(storeDialects)('quota holdings on $name', (dialect) => {
  let store: Store;
  let owner: string;
  beforeAll(async () => {
    ({ store, owner } = await storeWithOwner(dialect));
  });
  afterAll(async () => store?.close());

  it('counts instances and running places, sums the memory limits specs set, and leaves out `except`', async () => {
    const add = async (name: string, memoryBytes?: number, state?: 'running' | 'failed') => {
      const id = randomUUID();
      await store.instances.insert({ id, ownerId: owner, name, spec: spec(name, memoryBytes), desiredState: 'running' });
      if (state) await store.instances.updateObserved(id, { state });
      return id;
    };
    const a = await add('a', 100, 'running');
    await add('b', undefined, 'running');
    await add('c', 300, 'failed'); // ended for good: no running place, its memory not counted
    const d = await add('d', 50); // pending: holds a place
    const stopped = await add('e', 1000);
    await store.instances.setDesired(stopped, 'stopped');
    const gone = await add('f', 7);
    await store.instances.setDesired(gone, 'deleted');

    expect(await store.instances.holdings(owner, { ended })).toEqual({ instances: 5, running: 3, ownMemory: { count: 2, bytes: 150 } });
    expect(await store.instances.holdings(owner, { ended, except: a })).toEqual({ instances: 4, running: 2, ownMemory: { count: 1, bytes: 50 } });
    // A spec change moves its limit with it: set, changed, dropped.
    await store.instances.updateSpec(d, spec('d', 70), 'd');
    expect((await store.instances.holdings(owner, { ended })).ownMemory).toEqual({ count: 2, bytes: 170 });
    await store.instances.updateSpec(d, spec('d'), 'd');
    expect((await store.instances.holdings(owner, { ended })).ownMemory).toEqual({ count: 1, bytes: 100 });
    // Another owner's instances are not counted; an `except` that is not the owner's changes nothing.
    const other = (await store.users.insert({ id: randomUUID(), name: 'other', role: 'user', passwordHash: 'x', credits: 0 })).id;
    const theirs = randomUUID();
    await store.instances.insert({ id: theirs, ownerId: other, name: 'x', spec: spec('x', 5), desiredState: 'running' });
    expect(await store.instances.holdings(owner, { ended, except: theirs })).toEqual({ instances: 5, running: 3, ownMemory: { count: 1, bytes: 100 } });
    expect(await store.instances.holdings(other, { ended })).toEqual({ instances: 1, running: 1, ownMemory: { count: 1, bytes: 5 } });
  });
});
