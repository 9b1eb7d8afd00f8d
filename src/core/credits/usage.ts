/**
 * Usage reports: a user's balance, ledger rows and sums over a time range (grouped per
 * instance, per day or per kind), and the live CPU and memory of their running instances
 * from the driver's cgroup or container stats. One schema per payload, shared with the API.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { Store } from '../../store/index.js';
import type { Grouping, LedgerEntry, UsageGroup } from '../../store/ledger.js';
import { LEDGER_KINDS } from '../../store/ledger.js';
import { UserName, type User } from '../accounts/types.js';
import type { Instances } from '../instances/index.js';
import type { CreditsConfig } from './config.js';
import { instanceRate } from './metering.js';
import { GROUPINGS } from './groupings.js';
import { QuotasViewSchema } from './quotas.js';

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);

export { GROUPINGS };

export const UsageQuerySchema = Type.Object(
  {
    user: Type.Optional(Type.String({ pattern: UserName.pattern, description: 'admins: whose usage (default: yours)' })),
    from: Type.Optional(Type.String({ format: 'date-time', description: 'start of the range (inclusive)' })),
    to: Type.Optional(Type.String({ format: 'date-time', description: 'end of the range (exclusive)' })),
    group: Type.Union(GROUPINGS.map((g) => Type.Literal(g)), { default: 'instance', description: 'how `groups` sums the rows' }),
    limit: Type.Integer({ minimum: 0, maximum: 10_000, default: 200, description: 'newest ledger rows returned in `records`' }),
  },
  { additionalProperties: false },
);
export type UsageQuery = Static<typeof UsageQuerySchema>;

export const UsageRecordSchema = Type.Object({
  id: Type.String(),
  at: Type.String({ format: 'date-time' }),
  kind: Type.Union(LEDGER_KINDS.map((k) => Type.Literal(k))),
  what: Type.String({ description: 'the instance name, job runtime or token name; else the reason' }),
  subjectId: Nullable(Type.String()),
  seconds: Nullable(Type.Number()),
  credits: Type.Integer({ description: '> 0 credited, < 0 debited' }),
  balance: Type.Integer({ description: 'the balance after this row' }),
  reason: Type.String(),
});

export const UsageGroupSchema = Type.Object({
  key: Type.String({ description: 'instance or job id, day (YYYY-MM-DD) or kind' }),
  kind: Nullable(Type.String()),
  name: Nullable(Type.String()),
  credits: Type.Number({ description: 'sum: > 0 credited, < 0 debited' }),
  seconds: Type.Number(),
  entries: Type.Integer(),
});

export const UsageReportSchema = Type.Object({
  user: Type.String(),
  balance: Type.Integer(),
  from: Nullable(Type.String({ format: 'date-time' })),
  to: Nullable(Type.String({ format: 'date-time' })),
  spent: Type.Number({ description: 'credits debited for instances and jobs in the range' }),
  credited: Type.Number({ description: 'credits granted or topped up (net) in the range' }),
  group: Type.String(),
  groups: Type.Array(UsageGroupSchema),
  records: Type.Array(UsageRecordSchema),
  quotas: QuotasViewSchema,
  quotaUse: QuotasViewSchema,
});
export type UsageReport = Static<typeof UsageReportSchema>;

export const LiveInstanceSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  owner: Type.String(),
  metered: Type.Boolean(),
  creditsPerSecond: Type.Number(),
  startedAt: Nullable(Type.String({ format: 'date-time' })),
  cpuSeconds: Nullable(Type.Number({ description: 'CPU time used since start' })),
  cpuPercent: Nullable(Type.Number({ description: 'CPU use since the previous sample (100 = one core)' })),
  memoryBytes: Nullable(Type.Number()),
  memoryLimitBytes: Nullable(Type.Number()),
  pids: Nullable(Type.Number()),
});
export type LiveInstance = Static<typeof LiveInstanceSchema>;

const iso = (ms: number) => new Date(ms).toISOString();

export function recordOf(e: LedgerEntry): Static<typeof UsageRecordSchema> {
  return {
    id: e.id,
    at: iso(e.at),
    kind: e.kind,
    what: e.subjectName ?? e.reason,
    subjectId: e.subjectId,
    seconds: e.seconds,
    credits: e.amount,
    balance: e.balance,
    reason: e.reason,
  };
}

/** Reads usage from the ledger and live stats from the supervisor's workloads. */
export class UsageReader {
  /** Last CPU sample per instance, for cpuPercent. */
  private readonly cpuSamples = new Map<string, { cpuSeconds: number; at: number }>();

  constructor(
    private readonly store: Store,
    private readonly instances: Instances,
    private readonly config: CreditsConfig,
    private readonly defaultMemoryBytes: number,
  ) {}

  async ledger(user: User, q: { from?: number | undefined; to?: number | undefined; group: Grouping; limit: number }) {
    const range = { from: q.from, to: q.to };
    const [records, groups, kinds] = await Promise.all([
      q.limit ? this.store.ledger.list(user.id, range, q.limit) : Promise.resolve([]),
      this.store.ledger.totals(user.id, range, q.group),
      this.store.ledger.totals(user.id, range, 'kind'),
    ]);
    const sumOf = (names: string[]) => kinds.filter((k: UsageGroup) => names.includes(k.key)).reduce((n, k) => n + k.credits, 0);
    return { records: records.map(recordOf), groups, spent: -sumOf(['instance', 'job']), credited: sumOf(['grant', 'token']) };
  }

  /** The running instances of `user` (admins with `all`: everyone's) with their stats now. */
  async live(user: User, all: boolean): Promise<LiveInstance[]> {
    const records = await this.store.instances.list(all && user.role === 'admin' ? undefined : user.id);
    const out: LiveInstance[] = [];
    const now = Date.now();
    for (const r of records.filter((x) => x.state === 'running')) {
      const stats = await this.instances.supervisor.workload(r.id)?.stats().catch(() => undefined);
      const rate = instanceRate(r.spec, this.config);
      const cpu = stats?.cpuSeconds;
      const prev = this.cpuSamples.get(r.id);
      let cpuPercent: number | null = null;
      if (cpu !== undefined) {
        if (prev && now > prev.at) cpuPercent = Math.max(0, ((cpu - prev.cpuSeconds) / ((now - prev.at) / 1000)) * 100);
        this.cpuSamples.set(r.id, { cpuSeconds: cpu, at: now });
      }
      out.push({
        id: r.id,
        name: r.name,
        owner: r.ownerName,
        metered: rate.metered,
        creditsPerSecond: rate.creditsPerSecond,
        startedAt: r.startedAt == null ? null : iso(r.startedAt),
        cpuSeconds: cpu ?? null,
        cpuPercent: cpuPercent == null ? null : Math.round(cpuPercent * 10) / 10,
        memoryBytes: stats?.memoryBytes ?? null,
        memoryLimitBytes: r.spec.limits?.memoryBytes ?? this.defaultMemoryBytes,
        pids: stats?.pids ?? null,
      });
    }
    if (this.cpuSamples.size > 10_000) this.cpuSamples.clear();
    return out;
  }
}
