/**
 * Apps: the app (formation, settings, config vars, current release, the switch in
 * progress), its numbered releases, and its copies (which instance runs which process type
 * of which release, in which role). A switch's every step is written here before it acts.
 */
import type { AppSettings, Formation, ReleaseStatus } from '../core/apps/spec.js';
import type { Db } from './database.js';

export interface AppsTable {
  id: string;
  owner_id: string;
  name: string;
  formation: string; // JSON Formation
  settings: string; // JSON AppSettings
  config_vars: string; // JSON Record<string, string>
  current_version: number | null;
  next_version: number;
  switch: string | null; // JSON SwitchState
  created_at: number;
  updated_at: number;
}

export interface AppReleasesTable {
  app_id: string;
  version: number;
  status: ReleaseStatus;
  description: string;
  created_by: string;
  created_at: number;
  finished_at: number | null;
  process_types: string; // JSON string[]
  release_command: string | null;
  settings: string; // JSON AppSettings
  config_vars: string; // JSON Record<string, string>
  archive: string | null; // file name under the app's releases dir; null once pruned
  error: string | null;
  logs: string; // JSON string[]
}

export type CopyRole = 'new' | 'active' | 'draining' | 'release';

export interface AppCopiesTable {
  owner_id: string;
  instance_name: string;
  app_id: string;
  version: number;
  process_type: string;
  copy_index: number;
  role: CopyRole;
  created_at: number;
}

/** A switch in progress: enough to finish or undo it after a server restart. */
export interface SwitchState {
  version: number;
  phase: 'release' | 'starting' | 'draining';
  startedAt: number;
}

export interface AppRecord {
  id: string;
  ownerId: string;
  ownerName: string;
  name: string;
  formation: Formation;
  settings: AppSettings;
  configVars: Record<string, string>;
  currentVersion: number | null;
  nextVersion: number;
  switch: SwitchState | null;
  createdAt: number;
  updatedAt: number;
}

export interface ReleaseRecord {
  appId: string;
  version: number;
  status: ReleaseStatus;
  description: string;
  createdBy: string;
  createdAt: number;
  finishedAt: number | null;
  processTypes: string[];
  releaseCommand: string | null;
  settings: AppSettings;
  configVars: Record<string, string>;
  archive: string | null;
  error: string | null;
  logs: string[];
}

export interface CopyRecord {
  ownerId: string;
  instanceName: string;
  appId: string;
  version: number;
  processType: string;
  index: number;
  role: CopyRole;
  createdAt: number;
}

const toApp = (r: AppsTable & { owner_name: string }): AppRecord => ({
  id: r.id,
  ownerId: r.owner_id,
  ownerName: r.owner_name,
  name: r.name,
  formation: JSON.parse(r.formation) as Formation,
  settings: JSON.parse(r.settings) as AppSettings,
  configVars: JSON.parse(r.config_vars) as Record<string, string>,
  currentVersion: r.current_version == null ? null : Number(r.current_version),
  nextVersion: Number(r.next_version),
  switch: r.switch ? (JSON.parse(r.switch) as SwitchState) : null,
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
});

const toRelease = (r: AppReleasesTable): ReleaseRecord => ({
  appId: r.app_id,
  version: Number(r.version),
  status: r.status,
  description: r.description,
  createdBy: r.created_by,
  createdAt: Number(r.created_at),
  finishedAt: r.finished_at == null ? null : Number(r.finished_at),
  processTypes: JSON.parse(r.process_types) as string[],
  releaseCommand: r.release_command,
  settings: JSON.parse(r.settings) as AppSettings,
  configVars: JSON.parse(r.config_vars) as Record<string, string>,
  archive: r.archive,
  error: r.error,
  logs: JSON.parse(r.logs) as string[],
});

const toCopy = (r: AppCopiesTable): CopyRecord => ({
  ownerId: r.owner_id,
  instanceName: r.instance_name,
  appId: r.app_id,
  version: Number(r.version),
  processType: r.process_type,
  index: Number(r.copy_index),
  role: r.role,
  createdAt: Number(r.created_at),
});

export class AppStore {
  constructor(private readonly db: Db) {}

  private select() {
    return this.db.selectFrom('apps').innerJoin('users', 'users.id', 'apps.owner_id').selectAll('apps').select('users.name as owner_name');
  }

  async insert(a: Pick<AppRecord, 'id' | 'ownerId' | 'name' | 'formation' | 'settings' | 'configVars'>): Promise<void> {
    const now = Date.now();
    await this.db
      .insertInto('apps')
      .values({
        id: a.id,
        owner_id: a.ownerId,
        name: a.name,
        formation: JSON.stringify(a.formation),
        settings: JSON.stringify(a.settings),
        config_vars: JSON.stringify(a.configVars),
        current_version: null,
        next_version: 1,
        switch: null,
        created_at: now,
        updated_at: now,
      })
      .execute();
  }

  async byId(id: string): Promise<AppRecord | undefined> {
    const r = await this.select().where('apps.id', '=', id).executeTakeFirst();
    return r && toApp(r);
  }

  async byOwnerAndName(ownerId: string, name: string): Promise<AppRecord | undefined> {
    const r = await this.select().where('apps.owner_id', '=', ownerId).where('apps.name', '=', name).executeTakeFirst();
    return r && toApp(r);
  }

  async byOwnerNameAndName(ownerName: string, name: string): Promise<AppRecord | undefined> {
    const r = await this.select().where('users.name', '=', ownerName).where('apps.name', '=', name).executeTakeFirst();
    return r && toApp(r);
  }

  async list(ownerId?: string): Promise<AppRecord[]> {
    let q = this.select();
    if (ownerId) q = q.where('apps.owner_id', '=', ownerId);
    return (await q.orderBy('apps.created_at').orderBy('apps.id').execute()).map(toApp);
  }

  async update(
    id: string,
    p: Partial<Pick<AppRecord, 'formation' | 'settings' | 'configVars' | 'currentVersion' | 'nextVersion' | 'switch'>>,
  ): Promise<void> {
    await this.db
      .updateTable('apps')
      .set({
        ...(p.formation !== undefined && { formation: JSON.stringify(p.formation) }),
        ...(p.settings !== undefined && { settings: JSON.stringify(p.settings) }),
        ...(p.configVars !== undefined && { config_vars: JSON.stringify(p.configVars) }),
        ...(p.currentVersion !== undefined && { current_version: p.currentVersion }),
        ...(p.nextVersion !== undefined && { next_version: p.nextVersion }),
        ...(p.switch !== undefined && { switch: p.switch && JSON.stringify(p.switch) }),
        updated_at: Date.now(),
      })
      .where('id', '=', id)
      .execute();
  }

  async delete(id: string): Promise<void> {
    await this.db.deleteFrom('apps').where('id', '=', id).execute();
  }

  // --- releases

  async insertRelease(r: Omit<ReleaseRecord, 'finishedAt' | 'error' | 'logs'>): Promise<void> {
    await this.db
      .insertInto('app_releases')
      .values({
        app_id: r.appId,
        version: r.version,
        status: r.status,
        description: r.description,
        created_by: r.createdBy,
        created_at: r.createdAt,
        finished_at: null,
        process_types: JSON.stringify(r.processTypes),
        release_command: r.releaseCommand,
        settings: JSON.stringify(r.settings),
        config_vars: JSON.stringify(r.configVars),
        archive: r.archive,
        error: null,
        logs: '[]',
      })
      .execute();
  }

  async release(appId: string, version: number): Promise<ReleaseRecord | undefined> {
    const r = await this.db.selectFrom('app_releases').selectAll().where('app_id', '=', appId).where('version', '=', version).executeTakeFirst();
    return r && toRelease(r);
  }

  /** Newest first. */
  async releases(appId: string): Promise<ReleaseRecord[]> {
    const rows = await this.db.selectFrom('app_releases').selectAll().where('app_id', '=', appId).orderBy('version', 'desc').execute();
    return rows.map(toRelease);
  }

  async updateRelease(
    appId: string,
    version: number,
    p: Partial<Pick<ReleaseRecord, 'status' | 'finishedAt' | 'error' | 'logs' | 'archive'>>,
  ): Promise<void> {
    await this.db
      .updateTable('app_releases')
      .set({
        ...(p.status !== undefined && { status: p.status }),
        ...(p.finishedAt !== undefined && { finished_at: p.finishedAt }),
        ...(p.error !== undefined && { error: p.error }),
        ...(p.logs !== undefined && { logs: JSON.stringify(p.logs) }),
        ...(p.archive !== undefined && { archive: p.archive }),
      })
      .where('app_id', '=', appId)
      .where('version', '=', version)
      .execute();
  }

  // --- copies

  async insertCopy(c: Omit<CopyRecord, 'createdAt'>): Promise<void> {
    await this.db
      .insertInto('app_copies')
      .values({
        owner_id: c.ownerId,
        instance_name: c.instanceName,
        app_id: c.appId,
        version: c.version,
        process_type: c.processType,
        copy_index: c.index,
        role: c.role,
        created_at: Date.now(),
      })
      .execute();
  }

  async copies(appId: string): Promise<CopyRecord[]> {
    const rows = await this.db
      .selectFrom('app_copies')
      .selectAll()
      .where('app_id', '=', appId)
      .orderBy('process_type')
      .orderBy('copy_index')
      .orderBy('created_at')
      .execute();
    return rows.map(toCopy);
  }

  async copyByInstance(ownerId: string, instanceName: string): Promise<CopyRecord | undefined> {
    const r = await this.db
      .selectFrom('app_copies')
      .selectAll()
      .where('owner_id', '=', ownerId)
      .where('instance_name', '=', instanceName)
      .executeTakeFirst();
    return r && toCopy(r);
  }

  /** Changes the role of copies, all in one transaction: the proxy never sees half a switch. */
  async setRoles(changes: { ownerId: string; instanceName: string; role: CopyRole }[]): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      for (const c of changes) {
        await tx.updateTable('app_copies').set({ role: c.role }).where('owner_id', '=', c.ownerId).where('instance_name', '=', c.instanceName).execute();
      }
    });
  }

  /**
   * The moment of a switch, in one transaction: the new copies become the active ones, the
   * old ones drain, and the app's current release is the new one.
   */
  async commitSwitch(
    app: { id: string; version: number; switch: SwitchState },
    changes: { ownerId: string; instanceName: string; role: CopyRole }[],
  ): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      for (const c of changes) {
        await tx.updateTable('app_copies').set({ role: c.role }).where('owner_id', '=', c.ownerId).where('instance_name', '=', c.instanceName).execute();
      }
      await tx
        .updateTable('apps')
        .set({ current_version: app.version, switch: JSON.stringify(app.switch), updated_at: Date.now() })
        .where('id', '=', app.id)
        .execute();
    });
  }

  async deleteCopy(ownerId: string, instanceName: string): Promise<void> {
    await this.db.deleteFrom('app_copies').where('owner_id', '=', ownerId).where('instance_name', '=', instanceName).execute();
  }
}
