/**
 * Admission and settlement of jobs. Before a job is queued: the concurrent-jobs quota, then
 * (when jobs are metered) a reservation of the credits its timeout would cost, cut to what
 * the user has free — the job's timeout is cut to match. After it ends, the started seconds
 * of wall time (at most the reservation) are debited and the reservation released, under
 * the same per-user lock, so concurrent jobs together never spend more than the balance.
 */
import type { User } from '../accounts/types.js';
import { outOfCredits, type CreditAccounts } from './account.js';
import type { CreditsConfig } from './config.js';
import type { JobGate, JobTicket } from './gates.js';
import { jobRate, jobSeconds } from './metering.js';
import type { QuotaService } from './quotas.js';

export interface JobOutcome {
  runtime: string;
  status: string;
  started: boolean;
  /** From admission to the end: what a client waiting for the result sees. */
  latencySeconds: number;
}

export class CreditJobGate implements JobGate {
  private readonly active = new Map<string, number>();

  constructor(
    private readonly accounts: CreditAccounts,
    private readonly quotas: QuotaService,
    private readonly config: CreditsConfig,
    private readonly hooks: { finished(o: JobOutcome): void; debited(userId: string, balance: number): void; failed(e: unknown): void },
  ) {}

  /** Jobs the user has queued or running. */
  activeJobs(userId: string): number {
    return this.active.get(userId) ?? 0;
  }

  async admitJob(user: User, job: { id: string; runtime: string; timeoutMs: number }): Promise<JobTicket> {
    const rate = jobRate(this.config);
    const admitted = Date.now();
    let reserved = 0;
    let timeoutMs = job.timeoutMs;
    // Count the job before any await, so concurrent submissions see each other.
    const active = this.activeJobs(user.id);
    this.active.set(user.id, active + 1);
    try {
      await this.quotas.checkJobs(user.id, active);
      if (rate.metered) {
        await this.accounts.locked(user.id, async () => {
          const free = await this.accounts.available(user.id);
          const affordable = Math.floor(free / rate.creditsPerSecond + 1e-9);
          if (affordable < 1) throw outOfCredits(free, 'a metered job');
          const seconds = Math.min(Math.ceil(job.timeoutMs / 1000), affordable);
          timeoutMs = Math.min(job.timeoutMs, seconds * 1000);
          reserved = Math.ceil(seconds * rate.creditsPerSecond - 1e-9);
          this.accounts.reserve(user.id, reserved);
        });
      }
    } catch (e) {
      this.leave(user.id);
      throw e;
    }
    let settled = false;
    return {
      timeoutMs,
      cutByCredits: timeoutMs < job.timeoutMs,
      finished: (outcome) => {
        if (settled) return;
        settled = true;
        this.leave(user.id);
        this.hooks.finished({ runtime: job.runtime, status: outcome.status, started: outcome.started, latencySeconds: (Date.now() - admitted) / 1000 });
        if (rate.metered) void this.settle(user, job, reserved, outcome.started ? jobSeconds(outcome.wallMs) : 0, rate.creditsPerSecond);
      },
    };
  }

  private async settle(user: User, job: { id: string; runtime: string }, reserved: number, seconds: number, perSecond: number): Promise<void> {
    await this.accounts.locked(user.id, async () => {
      try {
        // Never more than reserved: a job cut by its credits is killed at that point, and
        // the moments the kill takes are not the user's to pay.
        const cost = Math.min(reserved, Math.ceil(seconds * perSecond - 1e-9));
        if (cost <= 0) return;
        const entry = await this.accounts.charge({
          userId: user.id,
          amount: cost,
          kind: 'job',
          subjectId: job.id,
          subjectName: job.runtime,
          seconds,
          reason: `job ${job.id} (${job.runtime}) ran ${seconds} started s`,
        });
        this.hooks.debited(user.id, entry.balance);
      } finally {
        this.accounts.release(user.id, reserved);
      }
    }).catch((e: unknown) => this.hooks.failed(e));
  }

  private leave(userId: string): void {
    const n = this.activeJobs(userId) - 1;
    if (n > 0) this.active.set(userId, n);
    else this.active.delete(userId);
  }
}
