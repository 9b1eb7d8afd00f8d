/**
 * Per-user quotas: the config's defaults, overridden per group and per user by an admin
 * (the user's own override wins; else the most generous of their groups'; 0 = no limit). Checked before
 * an instance is created or started (403 naming the quota) and before a job is queued
 * (429: running jobs end by themselves, so retrying soon can work).
 */
import { Type, type Static } from '@sinclair/typebox';
import type { Store } from '../../store/index.js';
import type { InstanceRecord } from '../../store/instances.js';
import type { QuotaOverrides } from '../../store/quotas.js';
import { GroupStore } from '../../store/groups.js';
import { errors } from '../errors.js';
import type { InstanceSpec } from '../instances/spec.js';
import { QUOTA_NAMES, type QuotaName, type Quotas } from './config.js';

const QuotaValue = Type.Integer({ minimum: 0, description: '0 = no limit' });
// One schema with two types (not a union): with the server's type coercion a union would
// turn null into 0 or 0 into null.
const Override = Type.Optional(
  Type.Unsafe<number | null>({ type: ['integer', 'null'], minimum: 0, description: '0 = no limit; null = the server default' }),
);

export const QuotasViewSchema = Type.Object({
  instances: QuotaValue,
  runningInstances: QuotaValue,
  memoryBytes: QuotaValue,
  concurrentJobs: QuotaValue,
});
export const QuotasPatchSchema = Type.Object(
  { instances: Override, runningInstances: Override, memoryBytes: Override, concurrentJobs: Override },
  { additionalProperties: false, minProperties: 1 },
);
export type QuotasPatch = Static<typeof QuotasPatchSchema>;

/** What the user holds against each quota. */
export type QuotaUse = Record<QuotaName, number>;

const plural = (n: number, one: string) => `${n} ${one}${n === 1 ? '' : 's'}`;

/**
 * Whether an instance holds a place against `runningInstances` (and its memory against
 * `memoryBytes`): it is meant to run and has not ended for good. One that runs, is starting or
 * waits in `backoff` to start again counts (it will run again by itself); one that `exited` or
 * `failed` and will not be restarted does not, though its desired state is still `running`.
 */
const ENDED: ReadonlySet<InstanceRecord['state']> = new Set(['exited', 'failed']);
export const holdsRunningPlace = (r: InstanceRecord): boolean => r.desiredState === 'running' && !ENDED.has(r.state);

export class QuotaService {
  constructor(
    private readonly store: Store,
    private readonly defaults: Quotas,
    private readonly defaultMemoryBytes: number,
  ) {}

  /** The user's quotas: their overrides over the config's defaults. */
  async of(userId: string): Promise<Quotas> {
    const own = await this.store.quotas.get(userId);
    const q = { ...this.defaults };
    const groups = new GroupStore(this.store.db);
    const groupSet = new Set<QuotaName>();
    const memberships = [...new Set((await groups.of(userId)).map((m) => m.group))];
    for (const g of await groups.quotas(memberships)) {
      for (const name of QUOTA_NAMES) {
        const v = g[name];
        if (v == null) continue;
        // The most generous group wins: 0 (no limit) beats any number.
        const seen = groupSet.has(name);
        q[name] = !seen ? v : q[name] === 0 || v === 0 ? 0 : Math.max(q[name], v);
        groupSet.add(name);
      }
    }
    for (const name of QUOTA_NAMES) {
      const v = own[name];
      if (v != null) q[name] = v;
    }
    return q;
  }

  async set(userId: string, patch: QuotasPatch): Promise<Quotas> {
    await this.store.quotas.set(userId, patch as QuotaOverrides);
    return this.of(userId);
  }

  /** Instances, running instances and their memory (the jobs count is the caller's). */
  async use(userId: string, concurrentJobs: number): Promise<QuotaUse> {
    return { ...(await this.holdings(userId)), concurrentJobs };
  }

  /**
   * Throws 403 when the owner may not have (or, with `start`, run) an instance with `spec`.
   * Asked on every create: the database counts the owner's instances (an index holds what
   * it needs), so a create costs the same with 5 instances or 5,000.
   */
  async checkInstance(ownerId: string, spec: InstanceSpec, opts: { instanceId?: string | undefined; start: boolean }): Promise<void> {
    const q = await this.of(ownerId);
    const others = await this.holdings(ownerId, opts.instanceId);
    if (!opts.instanceId && q.instances && others.instances >= q.instances) {
      throw errors.quotaExceeded('instances', q.instances, `quota "instances" is ${q.instances}: you already have ${plural(others.instances, 'instance')}`);
    }
    if (!opts.start) return;
    if (q.runningInstances && others.runningInstances >= q.runningInstances) {
      throw errors.quotaExceeded(
        'runningInstances',
        q.runningInstances,
        `quota "runningInstances" is ${q.runningInstances}: you already have ${plural(others.runningInstances, 'running instance')}`,
      );
    }
    const memory = others.memoryBytes + this.memoryOf(spec);
    if (q.memoryBytes && memory > q.memoryBytes) {
      throw errors.quotaExceeded(
        'memoryBytes',
        q.memoryBytes,
        `quota "memoryBytes" is ${q.memoryBytes}: your running instances would need ${memory} bytes of memory`,
      );
    }
  }

  /** Throws 429 when the user already has as many jobs queued or running as allowed. */
  async checkJobs(userId: string, active: number): Promise<void> {
    const { concurrentJobs } = await this.of(userId);
    if (concurrentJobs && active >= concurrentJobs) {
      throw errors.quotaBusy(
        'concurrentJobs',
        concurrentJobs,
        `quota "concurrentJobs" is ${concurrentJobs}: you already have ${plural(active, 'job')} queued or running`,
      );
    }
  }

  /** What the owner holds (leaving out `except`, the instance being changed or started). */
  private async holdings(ownerId: string, except?: string): Promise<Omit<QuotaUse, 'concurrentJobs'>> {
    const h = await this.store.instances.holdings(ownerId, { except, ended: [...ENDED] });
    // Specs without their own limit use the default: only the others were read.
    const memoryBytes = (h.running - h.ownMemory.count) * this.defaultMemoryBytes + h.ownMemory.bytes;
    return { instances: h.instances, runningInstances: h.running, memoryBytes };
  }

  private memoryOf(spec: InstanceSpec): number {
    return spec.limits?.memoryBytes ?? this.defaultMemoryBytes;
  }
}
