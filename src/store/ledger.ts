/**
 * The credits ledger: the one place that changes a user's balance. Every change is one
 * append-only row written in the same transaction as the balance update, so the balance
 * always equals the sum of the user's rows. Metering advances a per-run mark in that same
 * transaction, so a restart resumes where the last debit ended and never charges twice.
 */
import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Db } from './database.js';
import type { Database } from './schema.js';

export interface LedgerTable {
  id: string;
  user_id: string;
  at: number;
  amount: number;
  balance: number;
  kind: LedgerKind;
  subject_id: string | null;
  subject_name: string | null;
  seconds: number | null;
  reason: string;
}

export interface MeterMarksTable {
  subject_id: string;
  user_id: string;
  run_started_at: number;
  charged_until: number;
  carry: number;
}

export const LEDGER_KINDS = ['grant', 'token', 'instance', 'job'] as const;
export type LedgerKind = (typeof LEDGER_KINDS)[number];

export interface LedgerEntry {
  id: string;
  userId: string;
  at: number;
  amount: number;
  balance: number;
  kind: LedgerKind;
  subjectId: string | null;
  subjectName: string | null;
  seconds: number | null;
  reason: string;
}

export interface NewEntry {
  userId: string;
  amount: number;
  kind: LedgerKind;
  reason: string;
  subjectId?: string | null;
  subjectName?: string | null;
  seconds?: number | null;
  at?: number;
}

/** One metered run (an instance's current start) to charge up to `until`. */
export interface MeterRun {
  subjectId: string;
  subjectName: string;
  userId: string;
  runStartedAt: number;
  until: number;
  /** Turns metered seconds plus the carried fraction into whole credits and a new carry. */
  price(seconds: number, carry: number): { amount: number; carry: number };
}

export interface Range {
  from?: number | undefined;
  to?: number | undefined;
}

export type Grouping = 'instance' | 'day' | 'kind';

export interface UsageGroup {
  key: string;
  kind: string | null;
  name: string | null;
  credits: number;
  seconds: number;
  entries: number;
}

const DAY_MS = 86_400_000;

const toEntry = (r: LedgerTable): LedgerEntry => ({
  id: r.id,
  userId: r.user_id,
  at: Number(r.at),
  amount: Number(r.amount),
  balance: Number(r.balance),
  kind: r.kind,
  subjectId: r.subject_id,
  subjectName: r.subject_name,
  seconds: r.seconds == null ? null : Number(r.seconds),
  reason: r.reason,
});

/** Changes the balance and appends its row; runs inside the caller's transaction. */
async function append(trx: Kysely<Database>, e: NewEntry): Promise<LedgerEntry | undefined> {
  const updated = await trx
    .updateTable('users')
    .set((eb) => ({ credits: eb('credits', '+', e.amount) }))
    .where('id', '=', e.userId)
    .returning('credits')
    .executeTakeFirst();
  if (!updated) return undefined;
  const row: LedgerTable = {
    id: randomUUID(),
    user_id: e.userId,
    at: e.at ?? Date.now(),
    amount: e.amount,
    balance: Number(updated.credits),
    kind: e.kind,
    subject_id: e.subjectId ?? null,
    subject_name: e.subjectName ?? null,
    seconds: e.seconds ?? null,
    reason: e.reason,
  };
  await trx.insertInto('ledger').values(row).execute();
  return toEntry(row);
}

export interface MeterResult {
  entry?: LedgerEntry;
  seconds: number;
}

/** One run's charge, inside the caller's transaction (see LedgerStore.meter). */
async function meterIn(trx: Kysely<Database>, run: MeterRun, kind: LedgerKind): Promise<MeterResult | undefined> {
  const mark = await trx.selectFrom('meter_marks').selectAll().where('subject_id', '=', run.subjectId).executeTakeFirst();
  const sameRun = mark && Number(mark.run_started_at) === run.runStartedAt;
  const from = sameRun ? Math.max(Number(mark.charged_until), run.runStartedAt) : run.runStartedAt;
  if (run.until <= from) return undefined;
  const seconds = (run.until - from) / 1000;
  const { amount, carry } = run.price(seconds, mark ? Number(mark.carry) : 0);
  // Less than a credit so far: leave the mark, so the next charge covers these seconds
  // too and each row's seconds are the time it pays for.
  if (amount <= 0) return { seconds };
  // Advance the mark only from where we read it: a concurrent charge of the same run
  // (another transaction, another server) makes this one a no-op, never a double debit.
  const values = { user_id: run.userId, run_started_at: run.runStartedAt, charged_until: run.until, carry };
  const moved = mark
    ? await trx
        .updateTable('meter_marks')
        .set(values)
        .where('subject_id', '=', run.subjectId)
        .where('run_started_at', '=', mark.run_started_at)
        .where('charged_until', '=', mark.charged_until)
        .executeTakeFirst()
        .then((r) => Number(r.numUpdatedRows))
    : await trx
        .insertInto('meter_marks')
        .values({ subject_id: run.subjectId, ...values })
        .onConflict((oc) => oc.column('subject_id').doNothing())
        .executeTakeFirst()
        .then((r) => Number(r.numInsertedOrUpdatedRows ?? 0));
  if (!moved) return undefined;
  // Metered work stops when the balance runs out (see core/credits/meter.ts): what it ran past
  // that — a stop's grace period, a late timer — is not charged, so a balance never goes below
  // zero through metering.
  const user = await trx.selectFrom('users').select('credits').where('id', '=', run.userId).executeTakeFirst();
  if (!user) return undefined;
  const due = Math.min(amount, Math.max(0, Number(user.credits)));
  if (due <= 0) return { seconds };
  const capped = due < amount ? ` (${amount} due, capped at the balance)` : '';
  const entry = await append(trx, {
    userId: run.userId,
    amount: -due,
    kind,
    subjectId: run.subjectId,
    subjectName: run.subjectName,
    seconds,
    reason: `${kind} ${run.subjectName} ran ${seconds.toFixed(1)} s${capped}`,
    at: run.until,
  });
  return { ...(entry && { entry }), seconds };
}

export class LedgerStore {
  constructor(private readonly db: Db) {}

  /** Adds `amount` (negative: debits) and records why; undefined when the user is gone. */
  apply(e: NewEntry): Promise<LedgerEntry | undefined> {
    return this.db.transaction().execute((trx) => append(trx, e));
  }

  /**
   * Charges a metered run from where its mark stands (or from its start, for a new run) up
   * to `run.until`, debiting whole credits and carrying the fraction. Returns the row written
   * and the seconds it covers; no row while the time so far costs less than a credit.
   */
  meter(run: MeterRun, kind: LedgerKind): Promise<MeterResult | undefined> {
    return this.db.transaction().execute((trx) => meterIn(trx, run, kind));
  }

  /** `meter` for many runs in one transaction (a metering tick): one commit, not one each. */
  meterAll(runs: MeterRun[], kind: LedgerKind): Promise<(MeterResult | undefined)[]> {
    return this.db.transaction().execute(async (trx) => {
      const out: (MeterResult | undefined)[] = [];
      for (const run of runs) out.push(await meterIn(trx, run, kind));
      return out;
    });
  }

  /**
   * Credits a token carries go to its owner once: the first caller marks the token claimed
   * and credits the balance in one transaction; everyone after gets undefined.
   */
  claimTokenCredits(tokenId: string, at = Date.now()): Promise<LedgerEntry | undefined> {
    return this.db.transaction().execute(async (trx) => {
      // One conditional UPDATE: concurrent claimers wait on the row and then see it claimed.
      const t = await trx
        .updateTable('tokens')
        .set({ credits_claimed_at: at })
        .where('id', '=', tokenId)
        .where('credits_claimed_at', 'is', null)
        .where('credits', '>', 0)
        .returning(['user_id', 'credits', 'name'])
        .executeTakeFirst();
      if (!t) return undefined;
      return append(trx, {
        userId: t.user_id,
        amount: Number(t.credits),
        kind: 'token',
        subjectId: tokenId,
        subjectName: t.name,
        reason: `credits carried by token "${t.name}"`,
        at,
      });
    });
  }

  async balance(userId: string): Promise<number | undefined> {
    const r = await this.db.selectFrom('users').select('credits').where('id', '=', userId).executeTakeFirst();
    return r && Number(r.credits);
  }

  /** The sum of a user's rows: equals the balance (checked by the tests). */
  async sum(userId: string): Promise<number> {
    const r = await this.db
      .selectFrom('ledger')
      .select((eb) => eb.fn.coalesce(eb.fn.sum<number>('amount'), eb.lit(0)).as('total'))
      .where('user_id', '=', userId)
      .executeTakeFirstOrThrow();
    return Number(r.total);
  }

  /** Rows newest first. */
  async list(userId: string, range: Range, limit: number): Promise<LedgerEntry[]> {
    const rows = await this.inRange(userId, range).selectAll().orderBy('at', 'desc').limit(limit).execute();
    return rows.map(toEntry);
  }

  /** Sums per instance (or job runtime, grant, token), per UTC day, or per kind. */
  async totals(userId: string, range: Range, group: Grouping): Promise<UsageGroup[]> {
    const q = this.inRange(userId, range).select((eb) => [
      eb.fn.sum<number>('amount').as('credits'),
      eb.fn.coalesce(eb.fn.sum<number>('seconds'), eb.lit(0)).as('seconds'),
      eb.fn.countAll<number>().as('entries'),
      eb.fn.max('at').as('last'),
    ]);
    if (group === 'day') {
      // The divisor is inlined, not a parameter: PostgreSQL matches GROUP BY to SELECT by text.
      const day = sql<number>`at / ${sql.lit(DAY_MS)}`;
      const rows = await q
        .select(day.as('day'))
        .groupBy(day)
        .orderBy('day')
        .execute();
      return rows.map((r) => ({
        key: new Date(Math.floor(Number(r.day)) * DAY_MS).toISOString().slice(0, 10),
        kind: null,
        name: null,
        ...numbers(r),
      }));
    }
    if (group === 'kind') {
      const rows = await q.select('kind').groupBy('kind').orderBy('kind').execute();
      return rows.map((r) => ({ key: r.kind, kind: r.kind, name: null, ...numbers(r) }));
    }
    const rows = await q
      .select(['kind', 'subject_id', (eb) => eb.fn.max('subject_name').as('name')])
      .groupBy(['kind', 'subject_id'])
      .orderBy('last', 'desc')
      .execute();
    return rows.map((r) => ({ key: r.subject_id ?? r.kind, kind: r.kind, name: r.name, ...numbers(r) }));
  }

  private inRange(userId: string, range: Range) {
    let q = this.db.selectFrom('ledger').where('user_id', '=', userId);
    if (range.from !== undefined) q = q.where('at', '>=', range.from);
    if (range.to !== undefined) q = q.where('at', '<', range.to);
    return q;
  }
}

const numbers = (r: { credits: number | string; seconds: number | string; entries: number | string }) => ({
  credits: Number(r.credits),
  seconds: Number(r.seconds),
  entries: Number(r.entries),
});
