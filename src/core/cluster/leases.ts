/**
 * Which manager supervises which instance. One manager alone (the default) holds every
 * instance without asking anyone: `soleLeases`. Several managers sharing one PostgreSQL
 * database each hold a lease per instance they supervise (`SharedLeases`), renewed by a
 * heartbeat; an instance whose lease expired — its manager died or lost the database — is
 * taken by the next manager that reconciles it, which adopts or restarts its workload.
 *
 * The fence: a workload that outlives its manager (the process driver's keeper) must not
 * outlive its lease for long, or a manager on another host, which cannot reach that keeper,
 * would run a second copy. So the manager tells its keepers, at every renewal, a deadline —
 * its latest lease expiry plus one lease time (`fenceUntil`) — past which they stop its
 * workloads; and a manager that takes over a workload out of its reach waits `fenceMs` after
 * the lease expired before it starts its own copy (docs/instances.md, "The fence").
 */
import type { LeaseStore } from '../../store/leases.js';

/**
 * held: this manager already supervises it; taken: it does from now on (the instance may
 * have run under another manager: adopt or restart it); refused: another manager does.
 */
export type ClaimResult = 'held' | 'taken' | 'refused';

/** Who supervises an instance, as the leases table says: the manager and until when (ms since the epoch). */
export interface Holder {
  managerId: string;
  expiresAt: number;
}

export interface InstanceLeases {
  /** The manager's id in the leases table ('' for the sole manager). */
  readonly managerId: string;
  /** Asks to supervise `instanceId` now. */
  claim(instanceId: string): Promise<ClaimResult>;
  /**
   * Starts the heartbeat; `onLost` gets instances another manager took meanwhile, `onRenewed`
   * is called after each renewal (the fence moved: `fenceUntil`).
   */
  start(onLost: (instanceIds: string[]) => void, onRenewed?: () => void): void;
  /**
   * Until when this manager's workloads may run should it write nothing more from now on:
   * its latest lease expiry plus one lease time. Undefined when it is alone: no fence.
   */
  fenceUntil(): number | undefined;
  /** How long after a lease expired its workload may still run out of reach (0 when alone). */
  readonly fenceMs: number;
  /** Stops the heartbeat and gives every lease up, so another manager takes over at once. */
  close(): Promise<void>;
  /**
   * Every lease by instance id, read from the database now (what other managers wrote too);
   * undefined when this manager is alone and leases do not exist.
   */
  holders(): Promise<Map<string, Holder> | undefined>;
}

/** The only manager: supervises everything, stores nothing. */
export const soleLeases: InstanceLeases = {
  managerId: '',
  claim: async () => 'held',
  start: () => undefined,
  fenceUntil: () => undefined,
  fenceMs: 0,
  close: async () => undefined,
  holders: async () => undefined,
};

export interface SharedLeasesOptions {
  managerId: string;
  /** A lease not renewed for this long may be taken by another manager. */
  ttlMs: number;
  /** Failures of the heartbeat (the database is away): logged, retried at the next beat. */
  warn: (err: unknown, message: string) => void;
  now?: () => number;
}

export class SharedLeases implements InstanceLeases {
  readonly managerId: string;
  /**
   * The fence is the latest expiry written plus one lease time, and renewals come every third
   * of one, so a workload's fence falls at most 1⅓ lease times after its own lease expired: a
   * takeover out of reach waits 2 (the rest covers clocks that disagree a little).
   */
  readonly fenceMs: number;
  /** The latest lease expiry this manager wrote (a claim or a renewal). */
  private written = 0;
  private readonly held = new Map<string, number>(); // instance id → expiry this manager wrote
  private others = new Map<string, number>(); // instance id → expiry of another manager's lease
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;
  private readonly now: () => number;

  constructor(
    private readonly store: LeaseStore,
    private readonly opts: SharedLeasesOptions,
  ) {
    this.managerId = opts.managerId;
    this.now = opts.now ?? Date.now;
    this.fenceMs = 2 * opts.ttlMs;
  }

  fenceUntil(): number {
    // Before any write: nothing runs under this manager yet; a claim comes first.
    return Math.max(this.written, this.now()) + this.opts.ttlMs;
  }

  async claim(instanceId: string): Promise<ClaimResult> {
    const now = this.now();
    if ((this.held.get(instanceId) ?? 0) > now) return 'held';
    // Known to be someone else's and still fresh at the last heartbeat: no need to ask.
    if ((this.others.get(instanceId) ?? 0) > now) return 'refused';
    const expiresAt = now + this.opts.ttlMs;
    const wasHeld = this.held.has(instanceId);
    if (!(await this.store.claim(instanceId, this.managerId, now, expiresAt))) {
      this.others.set(instanceId, now + this.opts.ttlMs / 3);
      return 'refused';
    }
    this.held.set(instanceId, expiresAt);
    this.written = Math.max(this.written, expiresAt);
    this.others.delete(instanceId);
    return wasHeld ? 'held' : 'taken';
  }

  start(onLost: (instanceIds: string[]) => void, onRenewed?: () => void): void {
    // Three beats per lifetime: one late or failed beat does not lose the leases.
    this.timer = setInterval(() => {
      this.beating ??= this.beat(onLost)
        .then(() => onRenewed?.())
        .catch((e: unknown) => {
          this.opts.warn(e, 'renewing instance leases failed');
          this.expire(onLost);
        })
        .finally(() => (this.beating = undefined));
    }, this.opts.ttlMs / 3);
    this.timer.unref();
  }

  private async beat(onLost: (instanceIds: string[]) => void): Promise<void> {
    const now = this.now();
    const expiresAt = now + this.opts.ttlMs;
    const rows = await this.store.renew(this.managerId, expiresAt);
    this.written = Math.max(this.written, expiresAt);
    const mine = new Set<string>();
    const others = new Map<string, number>();
    for (const r of rows) {
      if (r.managerId === this.managerId) mine.add(r.instanceId);
      else others.set(r.instanceId, r.expiresAt);
    }
    this.others = others;
    const lost = [...this.held.keys()].filter((id) => !mine.has(id));
    for (const id of mine) this.held.set(id, expiresAt);
    for (const id of lost) this.held.delete(id);
    // Deleted instances lose their lease row with them; only ones another manager holds are lost.
    const taken = lost.filter((id) => others.has(id));
    if (taken.length) onLost(taken);
  }

  /**
   * Cut off from the database past a lease's expiry, this manager must assume another one
   * took the instance over: it gives it up, so no instance runs twice for long.
   */
  private expire(onLost: (instanceIds: string[]) => void): void {
    const now = this.now();
    const expired = [...this.held].filter(([, until]) => until <= now).map(([id]) => id);
    for (const id of expired) this.held.delete(id);
    if (expired.length) onLost(expired);
  }

  async holders(): Promise<Map<string, Holder>> {
    return new Map((await this.store.list()).map((r) => [r.instanceId, { managerId: r.managerId, expiresAt: r.expiresAt }]));
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.beating;
    this.held.clear();
    // Without the database the leases simply expire; shutdown goes on.
    await this.store.release(this.managerId).catch((e: unknown) => this.opts.warn(e, 'releasing instance leases failed'));
  }
}
