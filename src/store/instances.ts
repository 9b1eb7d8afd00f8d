/** Instances: spec, desired and observed state, driver handle and ports of each workload. */
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
  /** Of the running instances whose spec sets `limits.memoryBytes`, that limit. */
  memoryLimits: number[];
}

type Row = InstancesTable & { owner_name: string };

/** A record whose spec is left as the JSON text it is stored as (and without the handle). */
export type StoredInstance = Omit<InstanceRecord, 'spec' | 'handle'> & { specJson: string };

const toStored = (r: Row): StoredInstance => ({
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
  ports: JSON.parse(r.ports) as InstanceRecord['ports'],
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
  startedAt: r.started_at == null ? null : Number(r.started_at),
});

const toRecord = (r: Row): InstanceRecord => {
  const { specJson, ...rest } = toStored(r);
  return { ...rest, spec: JSON.parse(specJson) as InstanceSpec, handle: r.handle ? (JSON.parse(r.handle) as Handle) : null };
};

export class InstanceStore {
  constructor(private readonly db: Db) {}

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

  /** `list` with each spec as its stored JSON text: for a listing that writes it out again as it is. */
  async listStored(ownerId?: string): Promise<StoredInstance[]> {
    return (await this.listRows(ownerId)).map(toStored);
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

  /** The desired and observed state of every instance, and nothing else (the reconcile loop's question). */
  async states(): Promise<{ id: string; desiredState: DesiredState; state: InstanceState }[]> {
    const rows = await this.db.selectFrom('instances').select(['id', 'desired_state', 'observed_state']).execute();
    return rows.map((r) => ({ id: r.id, desiredState: r.desired_state, state: r.observed_state }));
  }

  /**
   * What an owner holds against the instance quotas, without reading their rows whole: how
   * many instances (not being deleted), how many of them hold a running place (desired
   * `running`, observed not in `ended`), and the memory limit of each running one whose spec
   * sets its own (the rest use the default). `except`: the instance being changed or started.
   */
  async holdings(ownerId: string, opts: { except?: string | undefined; ended: InstanceState[] }): Promise<QuotaHoldings> {
    let mine = this.db.selectFrom('instances').where('owner_id', '=', ownerId).where('desired_state', '!=', 'deleted');
    if (opts.except !== undefined) mine = mine.where('id', '!=', opts.except);
    let running = mine.where('desired_state', '=', 'running');
    if (opts.ended.length) running = running.where('observed_state', 'not in', opts.ended);
    const count = (q: typeof mine) => q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const [all, run, own] = await Promise.all([
      count(mine),
      count(running),
      // A spec without its own limit cannot contain the key: only the few that do are read.
      running.select('spec').where('spec', 'like', '%"memoryBytes"%').execute(),
    ]);
    const memoryLimits = own.map((r) => (JSON.parse(r.spec) as InstanceSpec).limits?.memoryBytes).filter((m): m is number => m !== undefined);
    return { instances: Number(all.n), running: Number(run.n), memoryLimits };
  }

  async setDesired(id: string, desired: DesiredState): Promise<void> {
    await this.db.updateTable('instances').set({ desired_state: desired, updated_at: Date.now() }).where('id', '=', id).execute();
  }

  async updateSpec(id: string, spec: InstanceSpec, name: string): Promise<void> {
    await this.db
      .updateTable('instances')
      .set({ spec: JSON.stringify(spec), name, updated_at: Date.now() })
      .where('id', '=', id)
      .execute();
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
  }

  async delete(id: string): Promise<void> {
    await this.db.deleteFrom('instances').where('id', '=', id).execute();
  }
}
