/** Instances: spec, desired and observed state, driver handle and ports of each workload. */
import type { Selectable } from 'kysely';
import type { Handle } from '../drivers/driver.js';
import type { DesiredState, InstanceSpec, InstanceState } from '../core/instances/spec.js';
import type { Db } from './database.js';
import type { InstancesTable } from './schema.js';

export interface InstanceRecord {
  id: string;
  ownerId: string;
  ownerName: string;
  name: string;
  spec: InstanceSpec;
  desiredState: DesiredState;
  state: InstanceState;
  generation: number;
  restartCount: number;
  exitCode: number | null;
  exitSignal: string | null;
  lastError: string | null;
  handle: Handle | null;
  ports: { name: string; hostPort: number }[];
  createdAt: number;
  updatedAt: number;
  startedAt: number | null;
}

/** Fields the supervisor updates as a workload runs. */
export type ObservedPatch = Partial<
  Pick<InstanceRecord, 'state' | 'generation' | 'restartCount' | 'exitCode' | 'exitSignal' | 'lastError' | 'handle' | 'ports' | 'startedAt'>
>;

/** See InstanceStore.holdings. */
export interface QuotaHoldings {
  instances: number;
  running: number;
  /** Of the running instances, how many set their own `limits.memoryBytes`, and those limits' sum. */
  ownMemory: { count: number; bytes: number };
}

/** The column quota sums read: the limit the spec sets itself, or null (the default applies). */
const memoryLimitOf = (spec: InstanceSpec): number | null => spec.limits?.memoryBytes ?? null;

type Row = Selectable<InstancesTable> & { owner_name: string };

/** A record whose spec and ports are left as the JSON text they are stored as (and without the handle). */
export type StoredInstance = Omit<InstanceRecord, 'spec' | 'handle' | 'ports'> & { specJson: string; portsJson: string };

type ListedRow = Omit<Row, 'handle' | 'memory_limit'>;

const toStored = (r: ListedRow): StoredInstance => ({
  id: r.id,
  ownerId: r.owner_id,
  ownerName: r.owner_name,
  name: r.name,
  specJson: r.spec,
  desiredState: r.desired_state,
  state: r.observed_state,
  generation: Number(r.generation),
  restartCount: Number(r.restart_count),
  exitCode: r.exit_code == null ? null : Number(r.exit_code),
  exitSignal: r.exit_signal,
  lastError: r.last_error,
  portsJson: r.ports,
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
  startedAt: r.started_at == null ? null : Number(r.started_at),
});

const toRecord = (r: Row): InstanceRecord => {
  const { specJson, portsJson, ...rest } = toStored(r);
  return {
    ...rest,
    spec: JSON.parse(specJson) as InstanceSpec,
    ports: JSON.parse(portsJson) as InstanceRecord['ports'],
    handle: r.handle ? (JSON.parse(r.handle) as Handle) : null,
  };
};

export class InstanceStore {
  /** Told the id of every instance this store writes (see `onChange`). */
  private readonly changeListeners = new Set<(id: string) => void>();

  constructor(private readonly db: Db) {}

  /**
   * Calls `fn` with the id of every instance written through this store (insert, desired
   * state, spec and name, observed state, delete), right after the write: what a cache of
   * rows (the listing's) drops its copy on. Returns the unsubscribe.
   */
  onChange(fn: (id: string) => void): () => void {
    this.changeListeners.add(fn);
    return () => this.changeListeners.delete(fn);
  }

  private changed(id: string): void {
    for (const fn of this.changeListeners) fn(id);
  }

  private select() {
    return this.db
      .selectFrom('instances')
      .innerJoin('users', 'users.id', 'instances.owner_id')
      .selectAll('instances')
      .select('users.name as owner_name');
  }

  async insert(i: { id: string; ownerId: string; name: string; spec: InstanceSpec; desiredState: DesiredState }): Promise<void> {
    const now = Date.now();
    await this.db
      .insertInto('instances')
      .values({
        id: i.id,
        owner_id: i.ownerId,
        name: i.name,
        spec: JSON.stringify(i.spec),
        memory_limit: memoryLimitOf(i.spec),
        desired_state: i.desiredState,
        observed_state: 'pending',
        generation: 0,
        restart_count: 0,
        exit_code: null,
        exit_signal: null,
        last_error: null,
        handle: null,
        ports: '[]',
        created_at: now,
        updated_at: now,
        started_at: null,
      })
      .execute();
    this.changed(i.id);
  }

  async byId(id: string): Promise<InstanceRecord | undefined> {
    const r = await this.select().where('instances.id', '=', id).executeTakeFirst();
    return r && toRecord(r);
  }

  async byOwnerAndName(ownerId: string, name: string): Promise<InstanceRecord | undefined> {
    const r = await this.select().where('instances.owner_id', '=', ownerId).where('instances.name', '=', name).executeTakeFirst();
    return r && toRecord(r);
  }

  async byOwnerNameAndName(ownerName: string, name: string): Promise<InstanceRecord | undefined> {
    const r = await this.select().where('users.name', '=', ownerName).where('instances.name', '=', name).executeTakeFirst();
    return r && toRecord(r);
  }

  /** Every instance, or one owner's; ordered by creation. */
  async list(ownerId?: string): Promise<InstanceRecord[]> {
    return (await this.listRows(ownerId)).map(toRecord);
  }

  /**
   * `list` with each spec and ports as their stored JSON text, and without the handle: for a
   * listing that writes them out again as they are.
   */
  async listStored(ownerId?: string, ids?: string[]): Promise<StoredInstance[]> {
    let q = this.db
      .selectFrom('instances')
      .innerJoin('users', 'users.id', 'instances.owner_id')
      .select([
        'instances.id', 'instances.owner_id', 'instances.name', 'instances.spec', 'instances.desired_state', 'instances.observed_state',
        'instances.generation', 'instances.restart_count', 'instances.exit_code', 'instances.exit_signal', 'instances.last_error',
        'instances.ports', 'instances.created_at', 'instances.updated_at', 'instances.started_at', 'users.name as owner_name',
      ]);
    if (ownerId) q = q.where('instances.owner_id', '=', ownerId);
    if (ids) q = q.where('instances.id', 'in', ids);
    return (await q.orderBy('instances.created_at').orderBy('instances.id').execute()).map(toStored);
  }

  /**
   * Every instance's id and when it was last written, or one owner's, in `list`'s order: what a
   * listing reads when it holds most rows already (a few bytes a row, against ~450 for all of
   * its columns).
   */
  async listStamps(ownerId?: string): Promise<{ id: string; updatedAt: number }[]> {
    let q = this.db.selectFrom('instances').select(['id', 'updated_at']);
    if (ownerId) q = q.where('owner_id', '=', ownerId);
    const rows = await q.orderBy('created_at').orderBy('id').execute();
    return rows.map((r) => ({ id: r.id, updatedAt: Number(r.updated_at) }));
  }

  private listRows(ownerId: string | undefined) {
    let q = this.select();
    if (ownerId) q = q.where('instances.owner_id', '=', ownerId);
    return q.orderBy('instances.created_at').orderBy('instances.id').execute();
  }

  /**
   * Instances in a desired and/or observed state, and (a text filter, not a JSON query) whose
   * stored spec contains `specContains`: what periodic work reads instead of every row.
   */
  async find(filter: { desiredState?: DesiredState; state?: InstanceState; specContains?: string }): Promise<InstanceRecord[]> {
    let q = this.select();
    if (filter.desiredState) q = q.where('instances.desired_state', '=', filter.desiredState);
    if (filter.state) q = q.where('instances.observed_state', '=', filter.state);
    // LIKE on both databases; callers pass fixed text without % or _ (no escaping needed).
    if (filter.specContains) q = q.where('instances.spec', 'like', `%${filter.specContains}%`);
    const rows = await q.orderBy('instances.created_at').orderBy('instances.id').execute();
    return rows.map(toRecord);
  }

  /**
   * The id, owner and stored spec text of the instances in a desired state, and nothing else:
   * for periodic work that needs one field of a few specs (the disk check's own limits) and
   * would otherwise turn every column of thousands of rows into values and parse every spec.
   */
  async specs(desiredState: DesiredState): Promise<{ id: string; ownerId: string; specJson: string }[]> {
    const rows = await this.db.selectFrom('instances').select(['id', 'owner_id', 'spec']).where('desired_state', '=', desiredState).execute();
    return rows.map((r) => ({ id: r.id, ownerId: r.owner_id, specJson: r.spec }));
  }

  /** The desired and observed state of every instance, and nothing else (the reconcile loop's question). */
  async states(): Promise<{ id: string; desiredState: DesiredState; state: InstanceState }[]> {
    const rows = await this.db.selectFrom('instances').select(['id', 'desired_state', 'observed_state']).execute();
    return rows.map((r) => ({ id: r.id, desiredState: r.desired_state, state: r.observed_state }));
  }

  /**
   * What an owner holds against the instance quotas, from the owner/states index alone (one
   * pass, no row read): how many instances (not being deleted), how many of them hold a
   * running place (desired `running`, observed not in `ended`), and of those the memory
   * limits their specs set themselves (the rest use the default). `except`: the instance
   * being changed or started, taken out after.
   */
  async holdings(ownerId: string, opts: { except?: string | undefined; ended: InstanceState[] }): Promise<QuotaHoldings> {
    type Cols = { desired_state: DesiredState; observed_state: InstanceState; memory_limit: number | null };
    const holdsPlace = (r: Cols) => r.desired_state === 'running' && !opts.ended.includes(r.observed_state);
    const groups = await this.db
      .selectFrom('instances')
      .select(['desired_state', 'observed_state', (eb) => eb.fn.countAll<number>().as('n'), (eb) => eb.fn.count<number>('memory_limit').as('own'), (eb) => eb.fn.sum<number | null>('memory_limit').as('bytes')])
      .where('owner_id', '=', ownerId)
      .where('desired_state', '!=', 'deleted')
      .groupBy(['desired_state', 'observed_state'])
      .execute();
    const h: QuotaHoldings = { instances: 0, running: 0, ownMemory: { count: 0, bytes: 0 } };
    for (const g of groups) {
      h.instances += Number(g.n);
      if (!holdsPlace({ ...g, memory_limit: null })) continue;
      h.running += Number(g.n);
      h.ownMemory.count += Number(g.own);
      h.ownMemory.bytes += Number(g.bytes ?? 0);
    }
    if (opts.except !== undefined) {
      const r = await this.db
        .selectFrom('instances')
        .select(['desired_state', 'observed_state', 'memory_limit'])
        .where('id', '=', opts.except)
        .where('owner_id', '=', ownerId)
        .where('desired_state', '!=', 'deleted')
        .executeTakeFirst();
      if (r) {
        h.instances--;
        if (holdsPlace(r)) {
          h.running--;
          if (r.memory_limit != null) {
            h.ownMemory.count--;
            h.ownMemory.bytes -= Number(r.memory_limit);
          }
        }
      }
    }
    return h;
  }

  async setDesired(id: string, desired: DesiredState): Promise<void> {
    await this.db.updateTable('instances').set({ desired_state: desired, updated_at: Date.now() }).where('id', '=', id).execute();
    this.changed(id);
  }

  async updateSpec(id: string, spec: InstanceSpec, name: string): Promise<void> {
    await this.db
      .updateTable('instances')
      .set({ spec: JSON.stringify(spec), memory_limit: memoryLimitOf(spec), name, updated_at: Date.now() })
      .where('id', '=', id)
      .execute();
    this.changed(id);
  }

  async updateObserved(id: string, p: ObservedPatch): Promise<void> {
    await this.db
      .updateTable('instances')
      .set({
        ...(p.state !== undefined && { observed_state: p.state }),
        ...(p.generation !== undefined && { generation: p.generation }),
        ...(p.restartCount !== undefined && { restart_count: p.restartCount }),
        ...(p.exitCode !== undefined && { exit_code: p.exitCode }),
        ...(p.exitSignal !== undefined && { exit_signal: p.exitSignal }),
        ...(p.lastError !== undefined && { last_error: p.lastError }),
        ...(p.handle !== undefined && { handle: p.handle && JSON.stringify(p.handle) }),
        ...(p.ports !== undefined && { ports: JSON.stringify(p.ports) }),
        ...(p.startedAt !== undefined && { started_at: p.startedAt }),
        updated_at: Date.now(),
      })
      .where('id', '=', id)
      .execute();
    this.changed(id);
  }

  async delete(id: string): Promise<void> {
    await this.db.deleteFrom('instances').where('id', '=', id).execute();
    this.changed(id);
  }
}
