/**
 * What users do with instances: create, list, show, change, start, stop, restart, signal,
 * delete, read logs and attach — each checked against the caller (another user's instance
 * is "not found"; admins see all). The desired state is written to the store before the
 * supervisor is asked to act on it.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { User } from '../accounts/types.js';
import type { Store } from '../../store/index.js';
import type { InstanceRecord } from '../../store/instances.js';
import { isUniqueViolation } from '../../store/dialect.js';
import { errors } from '../errors.js';
import { KeyedLock } from '../keyed-lock.js';
import type { InFlight } from '../sources/in-flight.js';
import type { InstancesConfig } from './config.js';
import { createInstanceDirs, instanceDirs } from './dirs.js';
import type { InstanceEvent, InstanceEvents } from './events.js';
import { InstanceListing } from './listing.js';
import type { InstanceLog } from './logs.js';
import type { Instance, InstancePatch, InstanceSpec, InstanceSpecInput } from './spec.js';
import { UPLOAD_FILE } from './source.js';
import { ACTIVE_STATES } from './states.js';
import type { Supervisor } from './supervisor.js';
import type { InstanceGate } from '../credits/gates.js';
import type { Holder, InstanceLeases } from '../cluster/leases.js';

/** An archive uploaded with the create request, saved to a temporary file by the caller. */
export interface UploadedArchive {
  file: string;
  fileName: string;
}


const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** What the proxy needs to route to an instance. */
export interface InstanceTarget {
  instanceId: string;
  ownerId: string;
  state: Instance['state'];
  ports: { name: string; hostPort: number }[];
}

export class InstanceService {
  /** Quotas and credits, asked before an instance is created, changed or started. */
  private gate: InstanceGate | undefined;
  /** Quota checks and the writes they allow, one at a time per owner (concurrent creates cannot both pass). */
  private readonly admissions = new KeyedLock();
  /** The listing's copy of each instance's JSON (when no other manager shares the database). */
  private readonly listing: InstanceListing;

  constructor(
    private readonly store: Store,
    private readonly supervisor: Supervisor,
    private readonly events: InstanceEvents,
    private readonly config: InstancesConfig,
    private readonly dataRoot: string,
    /** Source downloads and unpacks in progress, by instance id (a delete cancels its own). */
    private readonly sources?: InFlight,
    /** Who holds which instance, when managers share a database (holder and `stale` in `show`). */
    private readonly leases?: InstanceLeases,
  ) {
    this.listing = new InstanceListing(store.instances);
  }

  /**
   * `replacing`: the id of an instance this one takes over from (an app's switch starts the
   * new copy before the old one stops), so quotas count the pair once.
   */
  async create(user: User, input: InstanceSpecInput, upload?: UploadedArchive, opts: { replacing?: string } = {}): Promise<Instance> {
    if (upload && input.source) throw errors.validation('body.source: give either an uploaded archive or source.url, not both');
    const spec = this.checkSpec({ ...input, ...(upload && { source: { uploaded: upload.fileName } }) });
    await this.supervisor.admit(spec);
    const id = randomUUID();
    await this.admissions.run(user.id, async () => {
      if (await this.store.instances.byOwnerAndName(user.id, spec.name)) throw errors.instanceExists(spec.name);
      // An app answers to its name through the proxy: an instance may not take it.
      if (await this.store.apps.byOwnerAndName(user.id, spec.name)) throw errors.conflict(`an app named "${spec.name}" exists (see \`corral apps\`)`);
      await this.gate?.admitInstance(user, user.id, spec, { start: true, ...(opts.replacing && { instanceId: opts.replacing }) });
      // Only an upload needs the instance's dirs now; the first start makes them otherwise
      // (two fewer file system calls on every create).
      const dirs = instanceDirs(this.dataRoot, id);
      if (upload) await createInstanceDirs(dirs);
      try {
        if (upload) await rename(upload.file, path.join(dirs.root, UPLOAD_FILE));
        await this.store.instances.insert({ id, ownerId: user.id, name: spec.name, spec, desiredState: 'running' });
      } catch (e) {
        if (upload) await rm(dirs.root, { recursive: true, force: true });
        if (isUniqueViolation(e)) throw errors.instanceExists(spec.name);
        throw e;
      }
    });
    // A command starts at once and the reply says how that went; a source may take a
    // while to download, so its reply is "pending" and the events tell the rest.
    if (spec.source) this.supervisor.convergeInBackground(id);
    else await this.supervisor.converge(id);
    return this.present(await this.byIdOrThrow(id));
  }

  useGate(gate: InstanceGate): void {
    this.gate = gate;
  }

  async list(user: User): Promise<Instance[]> {
    const records = await this.store.instances.list(user.role === 'admin' ? undefined : user.id);
    const holders = await this.holders();
    return records.map((r) => this.show(r, holders));
  }

  /**
   * `list` as the JSON text (UTF-8) of `{"instances": […]}`: each instance's document kept as text and
   * only the changed ones read again (listing.ts). With managers sharing a database (holders)
   * each row goes through `showState`, which says who holds it now.
   */
  async listJson(user: User): Promise<Buffer> {
    const ownerId = user.role === 'admin' ? undefined : user.id;
    const holders = await this.holders();
    if (!holders) return this.listing.json(ownerId);
    const rows = await this.store.instances.listStored(ownerId);
    const docs = rows.map(({ specJson, portsJson, ...r }) => `{"spec":${specJson},${JSON.stringify(this.showState({ ...r, ports: JSON.parse(portsJson) }, holders)).slice(1)}`);
    return Buffer.from(`{"instances":[${docs.join(',')}]}`);
  }

  async get(user: User, ref: string): Promise<Instance> {
    return this.present(await this.find(user, ref));
  }

  /** Changes the spec; a running instance keeps its old spec until it is (re)started. */
  async update(user: User, ref: string, patch: InstancePatch): Promise<Instance> {
    const r = await this.find(user, ref);
    const merged: InstanceSpec = { ...r.spec, ...patch } as InstanceSpec;
    const spec = this.checkSpec(merged);
    await this.supervisor.admit(spec);
    await this.admissions.run(r.ownerId, async () => {
      await this.gate?.admitInstance(user, r.ownerId, spec, { instanceId: r.id, start: false, changes: patch as Partial<InstanceSpec> });
      if (spec.name !== r.name && (await this.store.instances.byOwnerAndName(r.ownerId, spec.name))) {
        throw errors.instanceExists(spec.name);
      }
      await this.store.instances.updateSpec(r.id, spec, spec.name);
    });
    return this.present(await this.byIdOrThrow(r.id));
  }

  async start(user: User, ref: string): Promise<Instance> {
    return this.desire(user, ref, 'running', { force: true });
  }

  async stop(user: User, ref: string): Promise<Instance> {
    return this.desire(user, ref, 'stopped', {});
  }

  async restart(user: User, ref: string): Promise<Instance> {
    return this.desire(user, ref, 'running', { force: true, restart: true });
  }

  async remove(user: User, ref: string): Promise<void> {
    const r = await this.find(user, ref);
    await this.store.instances.setDesired(r.id, 'deleted');
    this.sources?.cancel(r.id); // else the delete waits behind an unpack that may take minutes
    await this.supervisor.converge(r.id);
  }

  async signal(user: User, ref: string, signal: string): Promise<Instance> {
    const r = await this.find(user, ref);
    if (!this.supervisor.signal(r.id, signal)) throw errors.invalidState(`instance "${r.name}" is not running (${r.state})`);
    return this.present(r);
  }

  /** The instance's output (after the ownership check). */
  async output(user: User, ref: string): Promise<{ instance: Instance; log: InstanceLog }> {
    const r = await this.find(user, ref);
    return { instance: await this.present(r), log: this.supervisor.output(r.id) };
  }

  /** Empties the instance's private data dir; refused while it runs or may start. */
  async resetData(user: User, ref: string): Promise<void> {
    const r = await this.find(user, ref);
    if (ACTIVE_STATES.has(r.state)) {
      throw errors.invalidState(`instance "${r.name}" is ${r.state}; stop it first`);
    }
    const { data } = instanceDirs(this.dataRoot, r.id);
    await rm(data, { recursive: true, force: true });
    await mkdir(data, { recursive: true, mode: 0o700 });
  }

  /** Memory the running workload uses now, in bytes; undefined when it does not run or the driver cannot tell. */
  async memoryBytes(id: string): Promise<number | undefined> {
    const w = this.supervisor.workload(id);
    return w && (await w.stats().catch(() => ({ memoryBytes: undefined }))).memoryBytes;
  }

  /** Writes to the instance's stdin; false when it does not run. */
  writeStdin(id: string, data: Buffer | string): boolean {
    const w = this.supervisor.workload(id);
    if (!w) return false;
    w.write(data);
    return true;
  }

  /** State changes of the instances `user` may see. */
  subscribe(user: User, fn: (e: InstanceEvent) => void): () => void {
    return this.events.subscribe((e) => {
      if (user.role === 'admin' || e.ownerId === user.id) fn(e);
    });
  }

  /**
   * For the proxy: the instance `instanceName` of the user `ownerName`, with its state and
   * host ports (all on 127.0.0.1), or undefined when there is none. No permission check:
   * the proxy decides who may reach it (the owner, an admin, or whom the owner allows).
   */
  async resolveTarget(ownerName: string, instanceName: string): Promise<InstanceTarget | undefined> {
    const r = await this.store.instances.byOwnerNameAndName(ownerName, instanceName);
    if (!r || r.desiredState === 'deleted') return undefined;
    return { instanceId: r.id, ownerId: r.ownerId, state: r.state, ports: r.ports };
  }

  /** A uuid, `name` (the caller's own) or `owner:name`. Others' instances are not found. */
  async find(user: User, ref: string): Promise<InstanceRecord> {
    let r: InstanceRecord | undefined;
    if (UUID.test(ref)) r = await this.store.instances.byId(ref);
    else if (ref.includes(':')) {
      const [owner, name] = ref.split(':', 2) as [string, string];
      r = await this.store.instances.byOwnerNameAndName(owner, name);
    } else r = await this.store.instances.byOwnerAndName(user.id, ref);
    if (!r || r.desiredState === 'deleted' || (user.role !== 'admin' && r.ownerId !== user.id)) throw errors.instanceNotFound(ref);
    return r;
  }

  private async desire(
    user: User,
    ref: string,
    desired: 'running' | 'stopped',
    opts: { force?: boolean; restart?: boolean },
  ): Promise<Instance> {
    const r = await this.find(user, ref);
    await this.admissions.run(r.ownerId, async () => {
      // A start is refused like a create when its driver cannot run it now (no sandbox).
      if (desired === 'running') await this.supervisor.admit(r.spec);
      if (desired === 'running') await this.gate?.admitInstance(user, r.ownerId, r.spec, { instanceId: r.id, start: true });
      await this.store.instances.setDesired(r.id, desired);
    });
    await this.supervisor.converge(r.id, opts);
    return this.present(await this.byIdOrThrow(r.id));
  }

  private async byIdOrThrow(id: string): Promise<InstanceRecord> {
    const r = await this.store.instances.byId(id);
    if (!r) throw errors.instanceNotFound(id);
    return r;
  }

  /** Checks what the schema cannot say and fills in defaults. */
  private checkSpec(input: Omit<InstanceSpecInput, 'source'> & { source?: InstanceSpec['source'] }): InstanceSpec {
    const what = (['command', 'shell', 'source'] as const).filter((k) => input[k] !== undefined);
    if (what.length !== 1) {
      throw errors.validation(`body: give exactly one of "command", "shell" or "source"${what.length ? ` (got ${what.join(', ')})` : ''}`);
    }
    if (input.process !== undefined && !input.source) throw errors.validation('body.process: only a source has Procfile process types');
    const names = new Set<string>();
    for (const p of input.ports ?? []) {
      if (names.has(p.name)) throw errors.validation(`body.ports: the port name "${p.name}" is used twice`);
      names.add(p.name);
    }
    const max = this.config.maxLimits;
    for (const [key, value] of Object.entries(input.limits ?? {}) as [keyof typeof max, number][]) {
      if (value > max[key]) throw errors.validation(`body.limits.${key}: at most ${max[key]} on this server`);
    }
    if ((input.stopGraceSeconds ?? 0) > this.config.maxStopGraceSeconds) {
      throw errors.validation(`body.stopGraceSeconds: at most ${this.config.maxStopGraceSeconds} on this server`);
    }
    const process = input.source ? (input.process ?? 'web') : undefined;
    return {
      ...input,
      ...(process && { process }),
      env: input.env ?? {},
      // A Procfile `web` process is an HTTP server: it gets PORT without asking, as on Heroku.
      ports: input.ports ?? (process === 'web' ? [{ name: 'web' }] : []),
      restart: input.restart ?? 'always',
      stopSignal: input.stopSignal ?? 'SIGTERM',
      stopGraceSeconds: input.stopGraceSeconds ?? 10,
    };
  }

  private async holders(): Promise<Map<string, Holder> | undefined> {
    return this.leases?.holders();
  }

  private async present(r: InstanceRecord): Promise<Instance> {
    return this.show(r, await this.holders());
  }

  /**
   * The API document. With `holders` (managers share a database) it names the manager that
   * holds (or last held) the instance's lease and until when, and says `stale` rather than
   * what the store last said when an active instance's lease ran out: nobody watches it
   * then, so "running" would be a guess.
   */
  private show(r: InstanceRecord, holders?: Map<string, Holder>): Instance {
    return { spec: r.spec as Instance['spec'], ...this.showState(r, holders) };
  }

  /** The API document but its spec. */
  private showState(r: Omit<InstanceRecord, 'spec' | 'handle'>, holders?: Map<string, Holder>): Omit<Instance, 'spec'> {
    const iso = (ms: number | null) => (ms == null ? null : new Date(ms).toISOString());
    const lease = holders?.get(r.id);
    const stale = holders !== undefined && ACTIVE_STATES.has(r.state) && !(lease && lease.expiresAt > Date.now());
    return {
      id: r.id,
      name: r.name,
      owner: r.ownerName,
      desiredState: r.desiredState,
      state: stale ? 'stale' : r.state,
      ...(holders && { holder: lease ? { managerId: lease.managerId, leaseExpiresAt: iso(lease.expiresAt)! } : null }),
      generation: r.generation,
      restartCount: r.restartCount,
      exitCode: r.exitCode,
      exitSignal: r.exitSignal,
      lastError: r.lastError,
      ports: r.ports,
      createdAt: iso(r.createdAt)!,
      updatedAt: iso(r.updatedAt)!,
      startedAt: iso(r.startedAt),
    };
  }
}
