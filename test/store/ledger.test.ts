/**
 * The ledger store on SQLite and PostgreSQL: every change is a row written with the
 * balance (they always agree, even under concurrent writes), metering marks never charge
 * a second twice and carry fractions, a token's credits are claimed once, sums group by
 * instance, day and kind.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { priceSeconds } from '../../src/core/credits/metering.js';
import type { Store } from '../../src/store/index.js';
import type { MeterRun } from '../../src/store/ledger.js';
import { storeDialects } from '../helpers/postgres.js';

describe.each(storeDialects)('ledger on $name', (dialect) => {
  let store: Store;
  beforeAll(async () => {
    store = await dialect.open();
  });
  afterAll(async () => store?.close());

  const newUser = async (credits = 0) => {
    const u = await store.users.insert({ id: randomUUID(), name: `u-${randomUUID().slice(0, 8)}`, role: 'user', passwordHash: 'h', credits: 0 });
    if (credits) await store.ledger.apply({ userId: u.id, amount: credits, kind: 'grant', reason: 'start' });
    return u.id;
  };

  it('keeps the balance equal to the sum of the rows under many concurrent changes', async () => {
    const id = await newUser(100);
    await Promise.all(Array.from({ length: 40 }, (_, i) => store.ledger.apply({ userId: id, amount: i % 2 ? -3 : 2, kind: 'grant', reason: `r${i}` })));
    expect(await store.ledger.balance(id)).toBe(100 + 20 * 2 - 20 * 3);
    expect(await store.ledger.sum(id)).toBe(80);
    const rows = await store.ledger.list(id, {}, 100);
    expect(rows).toHaveLength(41);
    // Each row's balance is the one after it: a row's amount is the step from the balance before.
    const balances = new Set(rows.map((r) => r.balance));
    for (const r of rows) if (r.reason !== 'start') expect(balances.has(r.balance - r.amount)).toBe(true);
    // A user who does not exist gets no row.
    expect(await store.ledger.apply({ userId: randomUUID(), amount: 1, kind: 'grant', reason: 'x' })).toBeUndefined();
  });

  it('meters a run from its mark, carries fractions, and starts over for a new run', async () => {
    const id = await newUser(100);
    const run = (runStartedAt: number, until: number): MeterRun => ({
      subjectId: 'inst-1',
      subjectName: 'web',
      userId: id,
      runStartedAt,
      until,
      price: (s, carry) => priceSeconds(s, 0.5, carry),
    });
    expect(await store.ledger.meter(run(1000, 2000), 'instance')).toEqual({ seconds: 1 }); // 0.5 credit: no row yet
    const first = await store.ledger.meter(run(1000, 5000), 'instance'); // 4 s → 2 credits
    expect(first?.entry).toMatchObject({ amount: -2, seconds: 4, kind: 'instance', subjectName: 'web' });
    expect(await store.ledger.meter(run(1000, 5000), 'instance')).toBeUndefined(); // nothing twice
    expect(await store.ledger.meter(run(1000, 4000), 'instance')).toBeUndefined(); // nor the past
    const second = await store.ledger.meter(run(1000, 8000), 'instance'); // 3 s → 1.5: 1 credit, 0.5 carried
    expect(second?.entry?.amount).toBe(-1);
    const third = await store.ledger.meter(run(1000, 9000), 'instance'); // 1 s → 0.5 + 0.5 carried
    expect(third?.entry?.amount).toBe(-1);
    const next = await store.ledger.meter(run(20_000, 22_000), 'instance'); // a new run: from its own start
    expect(next?.entry).toMatchObject({ amount: -1, seconds: 2 });
    expect(await store.ledger.balance(id)).toBe(95);
    expect(await store.ledger.sum(id)).toBe(95);
    // Many charges of the same run at once (ticks, stop events, other servers): each second once.
    await Promise.all(Array.from({ length: 8 }, () => store.ledger.meter(run(20_000, 30_000), 'instance')));
    expect(await store.ledger.balance(id)).toBe(91);
    expect(await store.ledger.sum(id)).toBe(91);
  });

  it('credits a token’s credits to its owner once, whoever claims first', async () => {
    const id = await newUser(0);
    const tokenId = randomUUID();
    await store.tokens.insert({ id: tokenId, userId: id, name: 'carrying', scopes: ['jobs:read'], expiresAt: Date.now() + 60_000, credits: 25 });
    expect((await store.tokens.byId(tokenId))?.pendingCredits).toBe(25);
    const claims = await Promise.all(Array.from({ length: 6 }, () => store.ledger.claimTokenCredits(tokenId)));
    expect(claims.filter(Boolean)).toHaveLength(1);
    expect(await store.ledger.balance(id)).toBe(25);
    expect((await store.tokens.byId(tokenId))?.pendingCredits).toBe(0);
  });

  it('sums a range per instance, per day and per kind', async () => {
    const id = await newUser(50);
    const day = Date.UTC(2026, 0, 2, 12);
    await store.ledger.apply({ userId: id, amount: -4, kind: 'instance', subjectId: 'a', subjectName: 'web', seconds: 4, reason: 'ran', at: day });
    await store.ledger.apply({ userId: id, amount: -6, kind: 'instance', subjectId: 'a', subjectName: 'web', seconds: 6, reason: 'ran', at: day + 86_400_000 });
    await store.ledger.apply({ userId: id, amount: -2, kind: 'job', subjectId: 'j', subjectName: 'sh', seconds: 2, reason: 'ran', at: day + 86_400_000 });
    const byInstance = await store.ledger.totals(id, { from: day - 1 }, 'instance');
    expect(byInstance.find((g) => g.key === 'a')).toMatchObject({ kind: 'instance', name: 'web', credits: -10, seconds: 10, entries: 2 });
    const byDay = await store.ledger.totals(id, { from: day - 1, to: day + 2 * 86_400_000 }, 'day');
    expect(byDay).toEqual([
      { key: '2026-01-02', kind: null, name: null, credits: -4, seconds: 4, entries: 1 },
      { key: '2026-01-03', kind: null, name: null, credits: -8, seconds: 8, entries: 2 },
    ]);
    const byKind = await store.ledger.totals(id, { from: day - 1, to: day + 1 }, 'kind');
    expect(byKind).toEqual([{ key: 'instance', kind: 'instance', name: null, credits: -4, seconds: 4, entries: 1 }]);
  });
});
