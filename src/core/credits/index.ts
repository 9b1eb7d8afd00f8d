/**
 * Credits: the ledger, metering, stop-at-zero, quotas and usage (docs/credits.md).
 *
 * What other modules call (all on `corral.credits`; amounts are whole credits):
 *
 *   balance(userId)                     → the user's balance now
 *   grant(userId, amount, reason)       → a ledger row; a negative amount takes credits away
 *   charge({ userId, amount, kind, reason, subjectId?, subjectName?, seconds? })
 *                                       → debits `amount` (> 0) for work done
 *   assertCanStart(userId, what?)       → throws 402 `out_of_credits` when nothing is free
 *   quotas.of(userId) / quotas.set(userId, patch)
 *
 * Tokens carrying credits: `corral.accounts.tokens.create(user, { name, credits })` makes a
 * token whose credits top up its owner once, the first time it is used (the claim is one
 * transaction in the store: LedgerStore.claimTokenCredits).
 *
 * Metered instances: an instance spec's `metered` and `creditsPerSecond` (defaults from the
 * `credits.instances` config) say whether and how much it costs per second of running. The
 * meter debits every `credits.intervalSeconds` and at stop; at zero it stops the owner's
 * metered instances (lastError "out of credits", files kept). Starting a metered instance
 * or a metered job with nothing free is refused with 402.
 *
 * Jobs (metered when `credits.jobs.metered`) pay per started second of wall time: a
 * reservation before they start, settled after (see job-gate.ts).
 *
 * The instance and job services ask this module through the narrow InstanceGate and
 * JobGate hooks (gates.ts); nothing else changes a balance but the ledger store.
 */
import type { Logger } from 'pino';
import type { Store } from '../../store/index.js';
import type { LedgerEntry, NewEntry } from '../../store/ledger.js';
import type { User } from '../accounts/types.js';
import type { Config } from '../config.js';
import { errors } from '../errors.js';
import type { InstanceSpec, Instances } from '../instances/index.js';
import type { Metrics } from '../metrics.js';
import { CreditAccounts } from './account.js';
import type { InstanceGate } from './gates.js';
import { CreditJobGate } from './job-gate.js';
import { InstanceMeter } from './meter.js';
import { instanceRate } from './metering.js';
import { QuotaService } from './quotas.js';
import { UsageReader } from './usage.js';

export class Credits implements InstanceGate {
  readonly accounts: CreditAccounts;
  readonly quotas: QuotaService;
  readonly jobs: CreditJobGate;
  readonly meter: InstanceMeter;
  readonly usage: UsageReader;

  private constructor(
    private readonly config: Config,
    store: Store,
    instances: Instances,
    metrics: Metrics,
    log: Logger,
  ) {
    this.accounts = new CreditAccounts(store);
    this.accounts.onDebit((e) => metrics.creditsSpent(e.kind, -e.amount));
    const defaultMemory = config.instances.defaultLimits.memoryBytes;
    this.quotas = new QuotaService(store, config.quotas, defaultMemory);
    this.meter = new InstanceMeter(store, this.accounts, instances, config.credits, log);
    this.jobs = new CreditJobGate(this.accounts, this.quotas, config.credits, {
      finished: (o) => metrics.jobFinished(o.runtime, o.status, o.latencySeconds),
      debited: (userId, balance) => {
        if (balance <= 0) void this.meter.stopMetered(userId, balance);
      },
      failed: (e) => log.error({ err: e }, 'settling a job’s credits failed'),
    });
    this.usage = new UsageReader(store, instances, config.credits, defaultMemory);
  }

  /** Builds the module and starts metering (resuming runs a previous server charged). */
  static async open(config: Config, store: Store, instances: Instances, metrics: Metrics, log: Logger): Promise<Credits> {
    const credits = new Credits(config, store, instances, metrics, log);
    await credits.meter.open();
    return credits;
  }

  balance(userId: string): Promise<number> {
    return this.accounts.balance(userId);
  }

  grant(userId: string, amount: number, reason: string): Promise<LedgerEntry> {
    return this.accounts.grant(userId, amount, reason);
  }

  charge(e: Omit<NewEntry, 'amount'> & { amount: number }): Promise<LedgerEntry> {
    return this.accounts.charge(e);
  }

  assertCanStart(userId: string, what?: string): Promise<void> {
    return this.accounts.assertCanStart(userId, what);
  }

  /** InstanceGate: metering settings (admins only may lower them), quotas, then credits. */
  async admitInstance(
    by: User,
    ownerId: string,
    spec: InstanceSpec,
    opts: { instanceId?: string; start: boolean; changes?: Partial<InstanceSpec> },
  ): Promise<void> {
    if (by.role !== 'admin') this.checkMeteringSettings(opts.changes ?? spec);
    await this.quotas.checkInstance(ownerId, spec, opts);
    if (opts.start && instanceRate(spec, this.config.credits).metered) {
      await this.accounts.assertCanStart(ownerId, `metered instance "${spec.name}"`);
    }
  }

  /** Final charges of what stopped meanwhile; call after instances and jobs have closed. */
  close(): Promise<void> {
    return this.meter.close();
  }

  private checkMeteringSettings(s: Partial<Pick<InstanceSpec, 'metered' | 'creditsPerSecond'>>): void {
    const d = this.config.credits.instances;
    if (s.metered === false && d.metered) throw errors.forbidden('only admins may turn metering off (metered: false)');
    if (s.creditsPerSecond !== undefined && s.creditsPerSecond < d.creditsPerSecond) {
      throw errors.forbidden(`only admins may set creditsPerSecond below the server's ${d.creditsPerSecond}`);
    }
  }
}

export { OUT_OF_CREDITS } from './meter.js';
export type { InstanceGate, JobGate, JobTicket } from './gates.js';
