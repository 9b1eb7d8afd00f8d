/** Users, tokens and sessions in the store: the same behaviour on SQLite and PostgreSQL. */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/index.js';
import { isUniqueViolation } from '../../src/store/dialect.js';
import { storeDialects } from '../helpers/postgres.js';

describe.each(storeDialects)('accounts on $name', (dialect) => {
  let store: Store;
  beforeAll(async () => {
    store = await dialect.open();
  });
  afterAll(async () => store?.close());

  const newUser = (name: string, role: 'admin' | 'user' = 'user', credits = 0) =>
    store.users.insert({ id: randomUUID(), name, role, passwordHash: `hash-of-${name}`, credits });

  it('inserts, finds and lists users in name order (byte order on both)', async () => {
    const b = await newUser('bob');
    await newUser('Zed');
    await newUser('alice', 'admin', 2 ** 40);
    expect(await store.users.byName('bob')).toMatchObject({ id: b.id, name: 'bob', role: 'user', passwordHash: 'hash-of-bob' });
    expect((await store.users.byId(b.id))?.name).toBe('bob');
    expect(await store.users.byName('nobody')).toBeUndefined();
    const all = await store.users.list();
    expect(all.map((u) => u.name)).toEqual(['Zed', 'alice', 'bob']);
    // bigint columns come back as numbers, not strings, and keep their value.
    expect(all.find((u) => u.name === 'alice')!.credits).toBe(2 ** 40);
    expect(typeof all[0]!.credits).toBe('number');
    expect(await store.users.countAdmins()).toBe(1);
  });

  it('refuses a duplicate name with an error isUniqueViolation recognises', async () => {
    const err = await newUser('bob').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(isUniqueViolation(err)).toBe(true);
    expect(isUniqueViolation(new Error('something else'))).toBe(false);
  });

  it('updates a user and deleting one cascades to its tokens and sessions', async () => {
    const u = await newUser('carol');
    await store.users.update(u.id, { role: 'admin', passwordHash: 'new-hash' });
    expect(await store.users.byName('carol')).toMatchObject({ role: 'admin', passwordHash: 'new-hash' });
    await store.tokens.insert({ id: randomUUID(), userId: u.id, name: 't', scopes: ['instances:read'], expiresAt: Date.now() + 60_000 });
    await store.sessions.insert({ id_hash: `h-${u.id}`, user_id: u.id, csrf_token: 'c', created_at: Date.now(), expires_at: Date.now() + 1000 });
    expect(await store.users.delete(u.id)).toBe(true);
    expect(await store.users.delete(u.id)).toBe(false);
    expect(await store.tokens.listForUser(u.id)).toEqual([]);
    expect(await store.sessions.byHash(`h-${u.id}`)).toBeUndefined();
  });

  it('keeps tokens: names per user, revocation, last use', async () => {
    const u = await newUser('dave');
    const id = randomUUID();
    const expiresAt = Date.now() + 3_600_000;
    await store.tokens.insert({ id, userId: u.id, name: 'ci', scopes: ['jobs:write', 'jobs:read'], expiresAt });
    expect(await store.tokens.nameTaken(u.id, 'ci')).toBe(true);
    expect(await store.tokens.nameTaken(u.id, 'other')).toBe(false);
    const dup = await store.tokens
      .insert({ id: randomUUID(), userId: u.id, name: 'ci', scopes: [], expiresAt })
      .catch((e: unknown) => e);
    expect(isUniqueViolation(dup)).toBe(true);
    await store.tokens.touch(id, 1_700_000_000_000);
    await store.tokens.revoke(id);
    const t = await store.tokens.byId(id);
    expect(t).toMatchObject({ userId: u.id, user: 'dave', scopes: ['jobs:write', 'jobs:read'], lastUsedAt: new Date(1_700_000_000_000).toISOString() });
    expect(t!.expiresAt).toBe(new Date(expiresAt).toISOString());
    expect(t!.revokedAt).not.toBeNull();
    expect((await store.tokens.listForUser(u.id)).map((x) => x.name)).toEqual(['ci']);
  });

  it('keeps sessions: extend, delete, expire', async () => {
    const u = await newUser('erin');
    const now = Date.now();
    await store.sessions.insert({ id_hash: 'old', user_id: u.id, csrf_token: 'x', created_at: now, expires_at: now - 1 });
    await store.sessions.insert({ id_hash: 'new', user_id: u.id, csrf_token: 'y', created_at: now, expires_at: now + 1000 });
    await store.sessions.extend('new', now + 5000);
    expect(await store.sessions.byHash('new')).toEqual({ id_hash: 'new', user_id: u.id, csrf_token: 'y', created_at: now, expires_at: now + 5000 });
    await store.sessions.deleteExpired(now);
    expect(await store.sessions.byHash('old')).toBeUndefined();
    await store.sessions.delete('new');
    expect(await store.sessions.byHash('new')).toBeUndefined();
  });

  it('answers a ping', async () => {
    await expect(store.ping()).resolves.toBeUndefined();
  });
});
