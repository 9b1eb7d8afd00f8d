/**
 * What the ledger costs. A debit is one transaction (balance update + ledger row): compared
 * with a bare balance update, which is what a herder without a ledger would write. Then a
 * metering tick over many running instances (one transaction each) against the interval it
 * must fit in, and a metered job's admission plus settlement.
 */
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { CreditAccounts } from '../src/core/credits/account.js';
import { CreditsConfigSchema, QuotasSchema } from '../src/core/credits/config.js';
import { CreditJobGate } from '../src/core/credits/job-gate.js';
import { priceSeconds } from '../src/core/credits/metering.js';
import { QuotaService } from '../src/core/credits/quotas.js';
import { Value } from '@sinclair/typebox/value';
import { Store } from '../src/store/index.js';
import { tempDir } from '../test/helpers/server.js';
import { fmt, percentile, table, time, type Benchmark } from './lib.js';

const N = 2000;

const bench: Benchmark = async () => {
  const dir = await tempDir('corral-bench-credits-');
  const store = await Store.open(dir);
  try {
    const user = await store.users.insert({ id: randomUUID(), name: 'bench', role: 'user', passwordHash: 'h', credits: 0 });
    await store.ledger.apply({ userId: user.id, amount: 1e12, kind: 'grant', reason: 'bench' });

    const ledger = await time(N, () => store.ledger.apply({ userId: user.id, amount: -1, kind: 'job', subjectId: 'j', subjectName: 'sh', seconds: 1, reason: 'bench' }));
    const bare = await time(N, () =>
      store.db.updateTable('users').set((eb) => ({ credits: eb('credits', '-', 1) })).where('id', '=', user.id).execute(),
    );
    const row = (name: string, ms: number[]) => [name, fmt(percentile(ms, 50), 3), fmt(percentile(ms, 99), 3), fmt(1000 / (ms.reduce((a, b) => a + b, 0) / ms.length), 0)];

    // A metering tick: every running metered instance charged, 50 per transaction (as the meter does).
    const ticks: (string | number)[][] = [];
    for (const instances of [100, 1000]) {
      const started = Date.now();
      const runs = Array.from({ length: instances }, (_, i) => ({
        subjectId: `i-${instances}-${i}`,
        subjectName: `web-${i}`,
        userId: user.id,
        runStartedAt: started,
        price: (s: number, carry: number) => priceSeconds(s, 1, carry),
      }));
      let until = started;
      const ms = await time(5, async () => {
        until += 5000;
        for (let i = 0; i < runs.length; i += 50) await store.ledger.meterAll(runs.slice(i, i + 50).map((r) => ({ ...r, until })), 'instance');
      }, 1);
      ticks.push([instances, fmt(percentile(ms, 50), 0), fmt((percentile(ms, 50) / 5000) * 100, 1)]);
    }

    // A metered job's admission (quota check, locked reservation) and settlement (debit).
    const config = Value.Default(CreditsConfigSchema, { jobs: { metered: true } }) as never;
    const accounts = new CreditAccounts(store);
    const gate = new CreditJobGate(accounts, new QuotaService(store, Value.Default(QuotasSchema, {}) as never, 512 << 20), config, {
      finished: () => undefined,
      debited: () => undefined,
      failed: () => undefined,
    });
    let settled: () => void = () => undefined;
    const admit = await time(500, async () => {
      const ticket = await gate.admitJob({ ...user, createdAt: '' }, { id: randomUUID(), runtime: 'sh', timeoutMs: 10_000 });
      ticket.finished({ started: true, wallMs: 120, status: 'ok' });
      // Settlement runs after the ticket returns; wait for it so the next round starts clean.
      await accounts.locked(user.id, async () => settled());
    });

    return [
      {
        title: 'Credits: ledger writes, metering ticks, metered job admission',
        markdown: [
          table(['write (SQLite, WAL)', 'p50 ms', 'p99 ms', 'per second'], [row('ledger debit: balance + row in one transaction', ledger), row('bare balance update (no ledger)', bare)]),
          '',
          table(['running metered instances', 'tick ms (p50)', '% of a 5 s interval'], ticks),
          '',
          table(['metered job', 'p50 ms', 'p99 ms', 'per second'], [row('admission + settlement (quota, reservation, debit)', admit)]),
          '',
          `A ledger debit costs ${fmt(percentile(ledger, 50) / percentile(bare, 50), 1)}× a bare balance update at the median and stays well under a millisecond; ` +
            `a tick over ${ticks.at(-1)![0]} running metered instances takes ${ticks.at(-1)![2]}% of the default 5 s interval.`,
        ].join('\n'),
      },
    ];
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
};

export default bench;
