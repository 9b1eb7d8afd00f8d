/**
 * What users do with apps: deploy (create or update: every deploy is a new numbered
 * release), list releases, roll back, change config vars, scale, restart, delete — each
 * checked against the caller (another user's app is "not found"; admins see all, as
 * `owner:name`). Everything that changes what runs goes through a switch (switch.ts), one
 * at a time per app: the next deploy waits until the previous one has drained.
 */
import { EventEmitter } from 'node:events';
import { rm } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Store } from '../../store/index.js';
import type { AppRecord, ReleaseRecord } from '../../store/apps.js';
import type { User } from '../accounts/types.js';
import type { Config } from '../config.js';
import { errors } from '../errors.js';
import { KeyedLock } from '../keyed-lock.js';
import type { InstanceService, UploadedArchive } from '../instances/service.js';
import { INSTANCE_NAME } from '../instances/spec.js';
import { ReleaseArchives } from './archives.js';
import { Copies } from './copies.js';
import { AppLogs, copyLabel } from './logs.js';
import type { InstanceLog } from '../instances/logs.js';
import { Rotation } from './rotation.js';
import type { App, AppSettings, Copy, DeployOptions, DeployResult, EnvPatch, Formation, Release } from './spec.js';
import { Switcher } from './switch.js';

/** What the proxy needs to route to an app: its ready `web` copies. */
export interface AppTarget {
  appId: string;
  ownerId: string;
  /** running (some copy ready), starting (copies on their way), stopped (none). */
  state: 'running' | 'starting' | 'stopped';
  copies: { instanceId: string; ports: { name: string; hostPort: number }[] }[];
}

const SYSTEM_VIEW: User = { id: '', name: '', role: 'admin', credits: 0, createdAt: '' };
const STARTING = new Set(['pending', 'downloading', 'unpacking', 'starting', 'backoff', 'running']);

export class AppService {
  private readonly locks = new KeyedLock();
  private readonly events = new EventEmitter();
  private readonly archives: ReleaseArchives;
  private readonly rotation: Rotation;
  private readonly copies: Copies;
  private readonly switcher: Switcher;
  private readonly draining = new Set<Promise<void>>();
  /** Each app's log: its copies' lines, marked with the copy (logs.ts). */
  private readonly logs: AppLogs;
  /** Where the proxy serves an app (its host name rules live in the proxy's origins). */
  private addressOf: (owner: string, name: string) => string | undefined = () => undefined;

  constructor(
    private readonly store: Store,
    private readonly instances: InstanceService,
    private readonly config: Config,
    private readonly log: Logger,
  ) {
    this.events.setMaxListeners(0);
    this.archives = new ReleaseArchives(config.data);
    const changed = () => this.events.emit('change');
    this.rotation = new Rotation(store, (fn) => instances.subscribe(SYSTEM_VIEW, fn), changed);
    this.logs = new AppLogs(config.data, config.instances.logs, instances);
    this.copies = new Copies(store, instances, this.archives, this.rotation, config.apps, this.logs);
    this.switcher = new Switcher({ store, copies: this.copies, instances, config: config.apps, log, changed });
  }

  /** Finishes or undoes switches a restart interrupted, then probes every web copy for the rotation. */
  async open(): Promise<void> {
    for (const app of await this.store.apps.list()) {
      const owner = await this.ownerOf(app);
      try {
        await this.switcher.recover(app, owner);
      } catch (e) {
        this.log.error({ err: e, app: app.id }, 'could not finish an interrupted switch');
      }
      for (const c of await this.store.apps.copies(app.id)) {
        const r = await this.copies.instanceOf(c);
        if (r) await this.logs.tap(app.id, r.id, copyLabel(app.name, c.instanceName));
        if (c.processType !== 'web' || c.role !== 'active') continue;
        const release = await this.store.apps.release(app.id, c.version);
        if (r) this.rotation.watch(r.id, { ownerId: app.ownerId, name: r.name, healthPath: release?.settings.health?.path });
      }
    }
  }

  /** Waits for drains in progress (their old copies stop with the instances anyway). */
  async close(): Promise<void> {
    this.rotation.close();
    await Promise.allSettled([...this.draining]);
    await this.logs.close();
  }

  /** Lets the app URL come from the proxy's one rule for host names (set by the http layer). */
  useAddresses(addressOf: (owner: string, name: string) => string | undefined): void {
    this.addressOf = addressOf;
  }

  /** The app's log (after the ownership check): every copy's lines, marked with the copy. */
  async output(user: User, ref: string): Promise<{ app: AppRecord; log: InstanceLog }> {
    const app = await this.find(user, ref);
    return { app, log: this.logs.of(app.id) };
  }

  /** Calls `fn` when an app's route may have changed (a switch, a copy in or out of the rotation). */
  onChange(fn: () => void): () => void {
    this.events.on('change', fn);
    return () => this.events.off('change', fn);
  }

  // --- deploy, rollback, config vars, restart: each a switch

  /** Creates the app on its first deploy, else makes a new release of it; answers once the release serves. */
  async deploy(user: User, ref: string, upload: UploadedArchive, opts: DeployOptions = {}): Promise<DeployResult> {
    try {
      const { owner, name } = await this.ownerAndName(user, ref);
      const ownerId = owner.id;
      const procfile = await this.archives.procfileOf(upload.file, this.config.sources);
      const types = procfile.map((e) => e.type).filter((t) => t !== 'release');
      if (!types.length) throw errors.procfileInvalid('the Procfile has no process type to run (only "release")');
      return await this.locks.run(`${ownerId}/${name}`, async () => {
        let app = await this.store.apps.byOwnerAndName(ownerId, name);
        if (!app) {
          if (await this.store.instances.byOwnerAndName(ownerId, name)) {
            throw errors.conflict(`an instance named "${name}" exists (an older \`corral deploy\` made instances); delete it or deploy under another --name`);
          }
          const first = opts.process ?? (types.includes('web') ? 'web' : types[0]!);
          if (!types.includes(first)) throw errors.unknownProcessType(first, types);
          await this.store.apps.insert({ id: randomUUID(), ownerId, name, formation: { [first]: 1 }, settings: {}, configVars: {} });
          app = (await this.store.apps.byOwnerAndName(ownerId, name))!;
          this.log.info({ app: `${owner.name}/${name}` }, 'app created');
        }
        const settings: AppSettings = { ...app.settings, ...opts.settings };
        const configVars = { ...app.configVars, ...opts.env };
        const version = app.nextVersion;
        await this.store.apps.update(app.id, { settings, configVars, nextVersion: version + 1 });
        const archive = await this.archives.keep(app.id, version, upload.file);
        await this.store.apps.insertRelease({
          appId: app.id,
          version,
          status: 'pending',
          description: opts.description ?? `deploy by ${user.name}`,
          createdBy: user.name,
          createdAt: Date.now(),
          processTypes: types,
          releaseCommand: procfile.find((e) => e.type === 'release')?.command ?? null,
          settings,
          configVars,
          archive,
        });
        return this.switchTo(app.id, owner, version);
      });
    } finally {
      await rm(upload.file, { force: true });
    }
  }

  /** A new release from an old one's source and config vars (default: the one before the current). */
  async rollback(user: User, ref: string, version?: number): Promise<DeployResult> {
    const app = await this.find(user, ref);
    return this.locks.run(`${app.ownerId}/${app.name}`, async () => {
      const fresh = (await this.store.apps.byId(app.id))!;
      const releases = await this.store.apps.releases(app.id);
      const target =
        version === undefined
          ? releases.find((r) => r.version < (fresh.currentVersion ?? Infinity) && r.status === 'superseded')
          : releases.find((r) => r.version === version);
      if (!target) {
        if (version !== undefined) throw errors.releaseNotFound(app.name, version);
        throw errors.invalidState(`app "${app.name}" has no earlier release that served to roll back to`);
      }
      if (!target.archive) throw errors.invalidState(`the source of v${target.version} is no longer kept (apps.keepReleases); deploy it again instead`);
      await this.store.apps.update(app.id, { configVars: target.configVars, settings: target.settings });
      return this.newRelease(fresh, user, target, { configVars: target.configVars, description: `rollback to v${target.version}` });
    });
  }

  /** The config vars, values included (the owner's to see; never logged). */
  async env(user: User, ref: string): Promise<Record<string, string>> {
    return (await this.find(user, ref)).configVars;
  }

  /** Sets and unsets config vars: a new release and a zero-downtime restart (when one is deployed). */
  async changeEnv(user: User, ref: string, patch: EnvPatch): Promise<{ app: App; release: Release | null }> {
    const app = await this.find(user, ref);
    return this.locks.run(`${app.ownerId}/${app.name}`, async () => {
      const fresh = (await this.store.apps.byId(app.id))!;
      const configVars = { ...fresh.configVars, ...patch.set };
      for (const k of patch.unset ?? []) delete configVars[k];
      await this.store.apps.update(app.id, { configVars });
      const current = fresh.currentVersion === null ? undefined : await this.store.apps.release(app.id, fresh.currentVersion);
      if (!current) return { app: await this.show(app.id), release: null };
      // Names only: values never reach a description, a log line or an event.
      const said = [patch.set && `set ${Object.keys(patch.set).join(', ')}`, patch.unset?.length && `unset ${patch.unset.join(', ')}`].filter(Boolean).join('; ');
      return this.newRelease(fresh, user, current, { configVars, description: `config: ${said}` });
    });
  }

  /** New copies of the current release next to the old ones, then the switch. */
  async restart(user: User, ref: string): Promise<App> {
    const app = await this.find(user, ref);
    return this.locks.run(`${app.ownerId}/${app.name}`, async () => {
      const fresh = (await this.store.apps.byId(app.id))!;
      if (fresh.currentVersion === null) throw errors.invalidState(`app "${app.name}" has no release that serves; deploy it first`);
      const release = (await this.store.apps.release(app.id, fresh.currentVersion))!;
      await this.run(fresh, await this.ownerOf(fresh), release, { restart: true });
      return this.show(app.id);
    });
  }

  // --- formation

  /** Copies per process type. Counts above a quota are refused with nothing changed. */
  async scale(user: User, ref: string, formation: Formation): Promise<App> {
    const app = await this.find(user, ref);
    return this.locks.run(`${app.ownerId}/${app.name}`, async () => {
      const fresh = (await this.store.apps.byId(app.id))!;
      const release = fresh.currentVersion === null ? undefined : await this.store.apps.release(app.id, fresh.currentVersion);
      for (const type of Object.keys(formation)) {
        if (type === 'release') throw errors.validation('body.release: the release phase runs once per deploy; it cannot be scaled');
        if (release && !release.processTypes.includes(type)) {
          throw errors.validation(`body.${type}: the Procfile of v${release.version} has no process type "${type}"; known: ${release.processTypes.join(', ')}`);
        }
      }
      const next = { ...fresh.formation, ...formation };
      if (!release) {
        await this.store.apps.update(app.id, { formation: next });
        return this.show(app.id);
      }
      const owner = await this.ownerOf(fresh);
      const active = (await this.store.apps.copies(app.id)).filter((c) => c.role === 'active');
      const created: Awaited<ReturnType<Copies['start']>>[] = [];
      try {
        for (const [type, n] of Object.entries(formation)) {
          const have = new Set(active.filter((c) => c.processType === type).map((c) => c.index));
          for (let index = 1; index <= n; index++) {
            if (!have.has(index)) created.push(await this.copies.start(fresh, owner, release, { type, index, role: 'active' }));
          }
        }
      } catch (e) {
        await Promise.all(created.map((c) => this.copies.remove(owner, c)));
        throw e;
      }
      await this.store.apps.update(app.id, { formation: next });
      const extra = active.filter((c) => formation[c.processType] !== undefined && c.index > formation[c.processType]!);
      if (extra.length) {
        // Out of the rotation first, so the proxy stops sending them requests; then drain and stop.
        for (const c of extra) {
          const r = await this.copies.instanceOf(c);
          if (r) this.rotation.unwatch(r.id);
        }
        await this.store.apps.setRoles(extra.map((c) => ({ ownerId: c.ownerId, instanceName: c.instanceName, role: 'draining' as const })));
        this.events.emit('change');
        this.track(this.switcher.drain(fresh, owner, extra, release.settings.drainSeconds ?? this.config.apps.drainSeconds).then(() => undefined));
      }
      return this.show(app.id);
    });
  }

  // --- reading

  async list(user: User): Promise<App[]> {
    const apps = await this.store.apps.list(user.role === 'admin' ? undefined : user.id);
    return Promise.all(apps.map((a) => this.show(a.id)));
  }

  async get(user: User, ref: string): Promise<App> {
    return this.show((await this.find(user, ref)).id);
  }

  async releases(user: User, ref: string): Promise<Release[]> {
    const app = await this.find(user, ref);
    return (await this.store.apps.releases(app.id)).map(showRelease);
  }

  async release(user: User, ref: string, version: number): Promise<Release> {
    const app = await this.find(user, ref);
    const r = await this.store.apps.release(app.id, version);
    if (!r) throw errors.releaseNotFound(app.name, version);
    return showRelease(r);
  }

  /** Stops and deletes every copy, the releases and their sources. */
  async remove(user: User, ref: string): Promise<void> {
    const app = await this.find(user, ref);
    await this.locks.run(`${app.ownerId}/${app.name}`, async () => {
      const owner = await this.ownerOf(app);
      const copies = await this.store.apps.copies(app.id);
      const ids = (await Promise.all(copies.map((c) => this.copies.instanceOf(c)))).flatMap((r) => (r ? [r.id] : []));
      await Promise.all(copies.map((c) => this.copies.remove(owner, c)));
      await this.store.apps.delete(app.id);
      await this.logs.drop(app.id, ids);
      await this.archives.dropAll(app.id);
      this.events.emit('change');
    });
  }

  /** The proxy's start on demand and idle culler: every active copy's desired state. */
  async setRunning(user: User, ref: string, running: boolean): Promise<void> {
    const app = await this.find(user, ref);
    for (const c of (await this.store.apps.copies(app.id)).filter((x) => x.role === 'active')) {
      const r = await this.copies.instanceOf(c);
      if (r) await (running ? this.instances.start(user, r.id) : this.instances.stop(user, r.id));
    }
  }

  /** For the proxy: the app `name` of `ownerName` and its ready web copies; no permission check. */
  async resolveTarget(ownerName: string, name: string): Promise<AppTarget | undefined> {
    const app = await this.store.apps.byOwnerNameAndName(ownerName, name);
    if (!app) return undefined;
    const web = (await this.store.apps.copies(app.id)).filter((c) => c.role === 'active' && c.processType === 'web');
    const records = (await Promise.all(web.map((c) => this.copies.instanceOf(c)))).filter((r) => r !== undefined);
    const ready = records.filter((r) => r.state === 'running' && this.rotation.isReady(r.id));
    const state = ready.length ? 'running' : records.some((r) => r.desiredState === 'running' && STARTING.has(r.state)) ? 'starting' : 'stopped';
    return { appId: app.id, ownerId: app.ownerId, state, copies: ready.map((r) => ({ instanceId: r.id, ports: r.ports })) };
  }

  // --- internals

  /** A release made from `from` (its source and process types) with new config vars, then the switch. */
  private async newRelease(
    app: AppRecord,
    user: User,
    from: ReleaseRecord,
    what: { configVars: Record<string, string>; description: string },
  ): Promise<DeployResult> {
    if (!from.archive) throw errors.invalidState(`the source of v${from.version} is no longer kept; deploy again`);
    const version = app.nextVersion;
    await this.store.apps.update(app.id, { nextVersion: version + 1 });
    const archive = await this.archives.copy(app.id, from.archive, version);
    await this.store.apps.insertRelease({
      appId: app.id,
      version,
      status: 'pending',
      description: what.description,
      createdBy: user.name,
      createdAt: Date.now(),
      processTypes: from.processTypes,
      releaseCommand: from.releaseCommand,
      settings: from.settings,
      configVars: what.configVars,
      archive,
    });
    return this.switchTo(app.id, await this.ownerOf(app), version);
  }

  private async switchTo(appId: string, owner: User, version: number): Promise<DeployResult> {
    const app = (await this.store.apps.byId(appId))!;
    const release = (await this.store.apps.release(appId, version))!;
    const log = this.logs.of(appId);
    log.note(`v${version}: switching (${release.description})`);
    try {
      await this.run(app, owner, release);
    } catch (e) {
      log.note(`v${version} failed: ${e instanceof Error ? e.message : String(e)}`);
      throw e;
    }
    log.note(`v${version} serves`);
    await this.prune(appId);
    return { app: await this.show(appId), release: showRelease((await this.store.apps.release(appId, version))!) };
  }

  /** Runs a switch; its drain holds the app's lock (queued right behind the caller's section). */
  private async run(app: AppRecord, owner: User, release: ReleaseRecord, opts: { restart?: boolean } = {}): Promise<void> {
    const { drained } = await this.switcher.run(app, owner, release, opts);
    this.track(drained);
    void this.locks.run(`${app.ownerId}/${app.name}`, () => drained.catch(() => undefined));
  }

  private track(p: Promise<void>): void {
    const tracked = p.catch((e: unknown) => this.log.error({ err: e }, 'draining old copies failed'));
    this.draining.add(tracked);
    void tracked.finally(() => this.draining.delete(tracked));
  }

  /** Drops the sources of all but the newest `keepReleases` releases (never the current one). */
  private async prune(appId: string): Promise<void> {
    const app = (await this.store.apps.byId(appId))!;
    const kept = (await this.store.apps.releases(appId)).filter((r) => r.archive !== null);
    for (const r of kept.slice(this.config.apps.keepReleases)) {
      if (r.version === app.currentVersion) continue;
      await this.archives.drop(appId, r.archive!);
      await this.store.apps.updateRelease(appId, r.version, { archive: null });
    }
  }

  private async show(appId: string): Promise<App> {
    const app = (await this.store.apps.byId(appId))!;
    const copies: Copy[] = [];
    for (const c of await this.store.apps.copies(appId)) {
      const r = await this.copies.instanceOf(c);
      copies.push({
        instance: c.instanceName,
        id: r?.id ?? null,
        type: c.processType,
        index: c.index,
        version: c.version,
        role: c.role,
        state: r?.state ?? 'deleted',
        ready: !!r && r.state === 'running' && this.rotation.isReady(r.id),
        restartCount: r?.restartCount ?? 0,
        ports: r?.ports ?? [],
      });
    }
    const iso = (ms: number) => new Date(ms).toISOString();
    return {
      id: app.id,
      name: app.name,
      owner: app.ownerName,
      url: this.addressOf(app.ownerName, app.name) ?? null,
      currentVersion: app.currentVersion,
      formation: app.formation,
      settings: app.settings,
      configVars: Object.keys(app.configVars).sort(),
      copies,
      switch: app.switch && { version: app.switch.version, phase: app.switch.phase, startedAt: iso(app.switch.startedAt) },
      createdAt: iso(app.createdAt),
      updatedAt: iso(app.updatedAt),
    };
  }

  /** `name` (the caller's) or `owner:name` (admins, or the caller's own): who owns it and its name. */
  private async ownerAndName(user: User, ref: string): Promise<{ owner: User; name: string }> {
    const [ownerName, name] = ref.includes(':') ? (ref.split(':', 2) as [string, string]) : [user.name, ref];
    if (!new RegExp(INSTANCE_NAME).test(name)) throw errors.validation(`params.name: "${name}" is not an app name (lower-case letters, digits and "-")`);
    if (ownerName === user.name) return { owner: user, name };
    const found = user.role === 'admin' ? await this.store.users.byName(ownerName) : undefined;
    if (!found) throw errors.appNotFound(ref);
    const { passwordHash: _hash, ...owner } = found;
    return { owner, name };
  }

  async find(user: User, ref: string): Promise<AppRecord> {
    let app: AppRecord | undefined;
    if (ref.includes(':')) {
      const [owner, name] = ref.split(':', 2) as [string, string];
      app = await this.store.apps.byOwnerNameAndName(owner, name);
    } else app = await this.store.apps.byOwnerAndName(user.id, ref);
    if (!app || (user.role !== 'admin' && app.ownerId !== user.id)) throw errors.appNotFound(ref);
    return app;
  }

  private async ownerOf(app: AppRecord): Promise<User> {
    const u = await this.store.users.byId(app.ownerId);
    if (!u) throw errors.appNotFound(app.name);
    return u;
  }
}

function showRelease(r: ReleaseRecord): Release {
  return {
    version: r.version,
    status: r.status,
    description: r.description,
    createdBy: r.createdBy,
    createdAt: new Date(r.createdAt).toISOString(),
    finishedAt: r.finishedAt === null ? null : new Date(r.finishedAt).toISOString(),
    processTypes: r.processTypes,
    configVars: Object.keys(r.configVars).sort(),
    sourceKept: r.archive !== null,
    error: r.error,
    logs: r.logs,
  };
}
