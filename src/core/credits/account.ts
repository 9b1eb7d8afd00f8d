/**
 * Balances as the rest of core sees them: grant, charge, balance, and what is free to
 * spend (the balance minus what running jobs have reserved). Every change is written by
 * the ledger store; this class adds the reservations and a per-user lock, so two
 * admissions never both spend the same credits.
 */
import type { Store } from '../../store/index.js';
import type { LedgerEntry, NewEntry } from '../../store/ledger.js';
import { errors } from '../errors.js';
import { KeyedLock } from '../keyed-lock.js';

/** 402 out_of_credits, saying what could not start and how much is free. */
export function outOfCredits(free: number, what: string) {
  return errors.outOfCredits(`out of credits (${free} free): ${what} cannot start; ask an admin for credits`);
}

export class CreditAccounts {
  private readonly reserved = new Map<string, number>();
  private readonly lock = new KeyedLock();
  private readonly spentListeners: ((e: LedgerEntry) => void)[] = [];

  constructor(private readonly store: Store) {}

  /** Called with every debit written (metrics, stop-at-zero). */
  onDebit(fn: (e: LedgerEntry) => void): void {
    this.spentListeners.push(fn);
  }

  async balance(userId: string): Promise<number> {
    const b = await this.store.ledger.balance(userId);
    if (b === undefined) throw errors.notFound('no such user');
    return b;
  }

  /** The balance minus what this user's running jobs have reserved. */
  async available(userId: string): Promise<number> {
    return (await this.balance(userId)) - (this.reserved.get(userId) ?? 0);
  }

  /** Adds credits (an admin's grant, a token's top-up); a negative amount takes them away. */
  async grant(userId: string, amount: number, reason: string, kind: NewEntry['kind'] = 'grant'): Promise<LedgerEntry> {
    if (!Number.isInteger(amount) || amount === 0) throw errors.validation('amount: a whole number other than 0');
    return this.write({ userId, amount, kind, reason });
  }

  /** Debits `amount` credits (> 0) for work done. */
  async charge(e: Omit<NewEntry, 'amount'> & { amount: number }): Promise<LedgerEntry> {
    return this.write({ ...e, amount: -Math.abs(e.amount) });
  }

  /** Throws 402 out_of_credits unless the user has credits to spend. */
  async assertCanStart(userId: string, what = 'metered work'): Promise<void> {
    const free = await this.available(userId);
    if (free <= 0) throw outOfCredits(free, what);
  }

  /** Runs `fn` with no other locked call for the same user in between. */
  locked<T>(userId: string, fn: () => Promise<T>): Promise<T> {
    return this.lock.run(userId, fn);
  }

  reserve(userId: string, credits: number): void {
    this.reserved.set(userId, (this.reserved.get(userId) ?? 0) + credits);
  }

  release(userId: string, credits: number): void {
    const left = (this.reserved.get(userId) ?? 0) - credits;
    if (left > 0) this.reserved.set(userId, left);
    else this.reserved.delete(userId);
  }

  /** Tells the debit listeners about a row the ledger wrote elsewhere (metering). */
  debited(e: LedgerEntry): void {
    if (e.amount < 0) for (const fn of this.spentListeners) fn(e);
  }

  private async write(e: NewEntry): Promise<LedgerEntry> {
    const entry = await this.store.ledger.apply(e);
    if (!entry) throw errors.notFound('no such user');
    this.debited(entry);
    return entry;
  }
}
