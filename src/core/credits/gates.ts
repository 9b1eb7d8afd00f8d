/**
 * The two questions the instance and job services ask before work runs, answered by the
 * credits module (quotas, balance, reservations). Kept as narrow interfaces so those
 * services only hold an optional hook and know nothing of ledgers.
 */
import type { User } from '../accounts/types.js';
import type { InstanceSpec } from '../instances/spec.js';

export interface InstanceGate {
  /**
   * Throws (402 out_of_credits, 403 quota_exceeded or forbidden) when `ownerId` may not
   * have an instance with `spec`, or, with `start`, may not run it now. `instanceId` is the
   * instance being changed or started (absent on create); `changes` the fields a PATCH sets.
   */
  admitInstance(
    by: User,
    ownerId: string,
    spec: InstanceSpec,
    opts: { instanceId?: string; start: boolean; changes?: Partial<InstanceSpec> },
  ): Promise<void>;
}

export interface JobGate {
  /** Throws (402, 429) when `user` may not run another job now; else reserves its credits. */
  admitJob(user: User, job: { id: string; runtime: string; timeoutMs: number }): Promise<JobTicket>;
}

export interface JobTicket {
  /** The job may run at most this long: its timeout, cut to what the reservation pays for. */
  readonly timeoutMs: number;
  /** True when the credits, not the request, set `timeoutMs`. */
  readonly cutByCredits: boolean;
  /** Called exactly once when the job ended or will never start: settles the reservation. */
  finished(outcome: { started: boolean; wallMs: number; status: string }): void;
}
