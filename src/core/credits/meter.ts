/**
 * Metering of running instances. Every `intervalSeconds`, and when an instance leaves the
 * running state, each metered run is charged from where its mark stands to now (the mark
 * and the debit are one transaction; see LedgerStore.meter). Marks are per run, so after a
 * restart metering picks up where the last debit ended: a crash loses at most one interval.
 * When an owner's balance reaches zero, their metered instances are stopped (files kept)
 * with the last error "out of credits" — not at the next tick but at the moment the balance
 * runs out: after each charge the owner's stop is scheduled at balance ÷ rate from then, and
 * a charge never takes a balance below zero (LedgerStore caps it), as golem-herder charged
 * by the second.
 */
import type { Logger } from 'pino';
import type { Store } from '../../store/index.js';
import type { InstanceRecord } from '../../store/instances.js';
import type { MeterRun } from '../../store/ledger.js';
import { systemUser } from '../accounts/system-user.js';
import type { InstanceEvent, Instances } from '../instances/index.js';
import type { CreditAccounts } from './account.js';
import type { CreditsConfig } from './config.js';
import { instanceRate, priceSeconds } from './metering.js';


/** Runs charged per transaction in a tick. */
const TICK_BATCH = 50;

/** The lastError of an instance stopped at zero credits. */
export const OUT_OF_CREDITS = 'out of credits';

interface Run {
  subjectId: string;
  subjectName: string;
  userId: string;
  runStartedAt: number;
  creditsPerSecond: number;
}

export class InstanceMeter {
  /** Metered runs by instance id (a promise: a run is read from the store when it starts). */
  private readonly runs = new Map<string, Promise<Run | undefined>>();
  private readonly states = new Map<string, InstanceEvent['state']>();
  private readonly stopping = new Set<string>();
  private readonly pending = new Set<Promise<unknown>>();
  /** Per owner: the stop planned for when their balance runs out (before the next tick). */
  private readonly runOut = new Map<string, NodeJS.Timeout>();
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly store: Store,
    private readonly accounts: CreditAccounts,
    private readonly instances: Instances,
    private readonly config: CreditsConfig,
    private readonly log: Logger,
  ) {}

  async open(): Promise<void> {
    this.unsubscribe = this.instances.service.subscribe(systemUser('meter'), (e) => this.onEvent(e));
    await this.tick();
    this.timer = setInterval(() => void this.tick(), this.config.intervalSeconds * 1000);
    this.timer.unref();
  }

  /** Stops the timer after the final charges of instances that stopped meanwhile. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    for (const t of this.runOut.values()) clearTimeout(t);
    this.runOut.clear();
    this.unsubscribe?.();
    await this.ticking;
    await Promise.allSettled([...this.pending]);
  }

  /** Charges every running metered instance up to now, then stops those of owners at zero. */
  tick(): Promise<void> {
    this.ticking ??= this.chargeAll()
      .catch((e: unknown) => this.log.error({ err: e }, 'metering failed'))
      .finally(() => (this.ticking = undefined));
    return this.ticking;
  }

  private async chargeAll(): Promise<void> {
    const until = Date.now();
    const runs: Run[] = [];
    // Only running instances can be charged; with metering off by default, only those whose spec turns it on.
    const filter = { state: 'running' as const, ...(!this.config.instances.metered && { specContains: '"metered":true' }) };
    for (const r of await this.store.instances.find(filter)) {
      // Events are newer than this listing: a state they reported wins over the listed one.
      const known = this.states.get(r.id);
      if (known === undefined) this.states.set(r.id, r.state);
      else if (known !== 'running') continue;
      const run = this.runOf(r);
      if (!run) continue;
      if (!this.runs.has(r.id)) this.runs.set(r.id, Promise.resolve(run));
      runs.push(run);
    }
    // A transaction per batch: fewer commits than one per run, and never a long one that
    // would hold up every other query on the (single-writer) database.
    for (let i = 0; i < runs.length; i += TICK_BATCH) {
      const batch = runs.slice(i, i + TICK_BATCH).map((run) => this.meterRun(run, until));
      for (const result of await this.store.ledger.meterAll(batch, 'instance')) if (result?.entry) this.accounts.debited(result.entry);
    }
    const rates = new Map<string, number>();
    for (const r of runs) rates.set(r.userId, (rates.get(r.userId) ?? 0) + r.creditsPerSecond);
    for (const [owner, rate] of rates) await this.planStop(owner, until, rate);
  }

  /**
   * Stops the owner's metered instances now if their balance is gone, else plans the stop
   * for the moment it will be (charged up to `chargedUntil` at `rate` credits a second) when
   * that comes before the next tick.
   */
  private async planStop(ownerId: string, chargedUntil: number, rate: number): Promise<void> {
    clearTimeout(this.runOut.get(ownerId));
    this.runOut.delete(ownerId);
    const balance = await this.accounts.balance(ownerId).catch(() => undefined);
    if (balance === undefined) return;
    if (balance <= 0) return this.stopMetered(ownerId, balance);
    const inMs = chargedUntil + (balance / rate) * 1000 - Date.now();
    if (inMs >= this.config.intervalSeconds * 1000) return;
    const timer = setTimeout(() => {
      this.runOut.delete(ownerId);
      this.track(this.stopMetered(ownerId, 0));
    }, Math.max(0, inMs));
    timer.unref();
    this.runOut.set(ownerId, timer);
  }

  private runOf(r: InstanceRecord): Run | undefined {
    const rate = instanceRate(r.spec, this.config);
    if (r.state !== 'running' || r.startedAt == null || !rate.metered) return undefined;
    return { subjectId: r.id, subjectName: r.name, userId: r.ownerId, runStartedAt: r.startedAt, creditsPerSecond: rate.creditsPerSecond };
  }

  private meterRun(run: Run, until: number): MeterRun {
    return { ...run, until, price: (seconds, carry) => priceSeconds(seconds, run.creditsPerSecond, carry) };
  }

  private async charge(run: Run, until: number): Promise<void> {
    const result = await this.store.ledger.meter(this.meterRun(run, until), 'instance');
    if (result?.entry) this.accounts.debited(result.entry);
  }

  private onEvent(e: InstanceEvent): void {
    const prev = this.states.get(e.id);
    if (e.type === 'deleted') {
      // Its mark stays (a small row): without it, a tick that listed the instance just
      // before the delete would charge the whole run again.
      this.states.delete(e.id);
      this.runs.delete(e.id);
      return;
    }
    this.states.set(e.id, e.state);
    if (e.state === 'running' && prev !== 'running') {
      // Read now, before a later restart can change startedAt: the store answers in order.
      const run = this.store.instances.byId(e.id).then((r) => r && this.runOf(r));
      this.runs.set(e.id, run);
      // A new metered run brings its owner's run-out moment closer: charge and plan now, not
      // at the next tick.
      this.track(run.then((r) => r && this.tick()));
    } else if (e.state !== 'running' && prev === 'running') {
      const run = this.runs.get(e.id);
      this.runs.delete(e.id);
      if (run) this.track(run.then((r) => r && this.charge(r, Date.parse(e.at))));
    }
  }

  /** Also called after a job's debit takes the balance to zero. */
  async stopMetered(ownerId: string, balance: number): Promise<void> {
    const owner = await this.store.users.byId(ownerId);
    if (!owner) return;
    for (const r of await this.store.instances.list(ownerId)) {
      if (r.desiredState !== 'running' || !instanceRate(r.spec, this.config).metered || this.stopping.has(r.id)) continue;
      this.stopping.add(r.id);
      this.log.info({ instance: r.id, owner: owner.name, balance }, 'stopping a metered instance: out of credits');
      const stop = (async () => {
        await this.store.instances.updateObserved(r.id, { lastError: `${OUT_OF_CREDITS} (balance ${balance}); its files are kept` });
        await this.instances.service.stop(owner, r.id);
      })()
        .catch((e: unknown) => this.log.error({ err: e, instance: r.id }, 'stopping an instance out of credits failed'))
        .finally(() => this.stopping.delete(r.id));
      this.track(stop);
    }
  }

  private track(p: Promise<unknown>): void {
    const tracked = p.catch((e: unknown) => this.log.error({ err: e }, 'metering failed'));
    this.pending.add(tracked);
    void tracked.finally(() => this.pending.delete(tracked));
  }
}
