/** The store suite's common start: a fresh, migrated store with one user its rows belong to. */
import { randomUUID } from 'node:crypto';
import type { Store } from '../../src/store/index.js';
import type { StoreDialect } from '../helpers/postgres.js';

export async function storeWithOwner(dialect: StoreDialect): Promise<{ store: Store; owner: string }> {
  const store = await dialect.open();
  const owner = (await store.users.insert({ id: randomUUID(), name: 'owner', role: 'user', passwordHash: 'x', credits: 0 })).id;
  return { store, owner };
}
