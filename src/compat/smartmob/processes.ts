/**
 * smartmob-agent processes as corral instances: each `app.node` slug of a user is one
 * instance running a Procfile process from `source_url` with `restart: always`, made and
 * ended through the instances service like any other. The store keeps slug → instance so
 * the registry survives a restart.
 */
import { createHash } from 'node:crypto';
import type { User } from '../../core/accounts/index.js';
import type { Corral } from '../../core/corral.js';
import { errors, isCorralError } from '../../core/errors.js';
import type { Instance } from '../../core/instances/index.js';
import type { SmartmobProcess } from '../../store/smartmob.js';
import type { CreateProcess, OldState } from './schemas.js';

/** The instance name of a slug: readable, unique by its hash, within the instance name rules. */
export function instanceNameFor(slug: string): string {
  const readable = slug.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40);
  const hash = createHash('sha256').update(slug).digest('hex').slice(0, 10);
  return `sm-${readable ? `${readable}-` : ''}${hash}`;
}

/** Source failures (the supervisor's lastError starts with the error code) in the old words. */
const FAILURES: Record<string, OldState> = {
  download_failed: 'download failure',
  source_refused: 'download failure',
  source_too_large: 'download failure',
  bad_archive: 'download failure',
  no_procfile: 'no procfile',
  procfile_invalid: 'no procfile',
  unknown_process_type: 'unknown process type',
};

export function oldState(i: Instance): OldState {
  switch (i.state) {
    case 'pending':
    case 'downloading':
    case 'unpacking':
    case 'stopped':
      return i.state;
    case 'failed':
      return FAILURES[/^([a-z_]+):/.exec(i.lastError ?? '')?.[1] ?? ''] ?? 'failed';
    default:
      // starting, running, backoff, exited: the old agent said "processing" while it kept
      // the process going, and so does corral (the precise state is in `corral.state`).
      return 'processing';
  }
}

export interface ProcessView {
  process: SmartmobProcess;
  instance: Instance;
}

export class SmartmobProcesses {
  constructor(private readonly corral: Corral) {}

  private get service() {
    return this.corral.instances.service;
  }

  async create(user: User, req: CreateProcess): Promise<ProcessView> {
    const slug = `${req.app}.${req.node}`;
    const store = this.corral.store.smartmob;
    if (await this.find(user, slug)) throw errors.conflict(`a process "${slug}" already exists`);
    const instance = await this.service
      .create(user, {
        name: instanceNameFor(slug),
        source: { url: req.source_url },
        process: req.process_type,
        env: req.env ?? {},
        ports: [{ name: 'web' }],
        restart: 'always',
      })
      .catch((e: unknown) => {
        if (isCorralError(e) && e.code === 'instance_exists') throw errors.conflict(`a process "${slug}" already exists`);
        throw e;
      });
    const process = { ownerId: user.id, slug, instanceId: instance.id, app: req.app, node: req.node };
    if (!(await store.insert(process))) {
      await this.service.remove(user, instance.id);
      throw errors.conflict(`a process "${slug}" already exists`);
    }
    return { process, instance };
  }

  async list(user: User): Promise<ProcessView[]> {
    const views = await Promise.all((await this.corral.store.smartmob.list(user.id)).map((p) => this.view(user, p)));
    return views.filter((v): v is ProcessView => v !== undefined);
  }

  async get(user: User, slug: string): Promise<ProcessView> {
    const found = await this.find(user, slug);
    if (!found) throw errors.notFound(`no process "${slug}"`);
    return found;
  }

  /** Ends the process and everything it started, and forgets the slug. */
  async remove(user: User, slug: string): Promise<void> {
    const { process } = await this.get(user, slug);
    await this.service.remove(user, process.instanceId).catch((e: unknown) => {
      if (!(isCorralError(e) && e.code === 'instance_not_found')) throw e;
    });
    await this.corral.store.smartmob.delete(user.id, slug);
  }

  private async find(user: User, slug: string): Promise<ProcessView | undefined> {
    const p = await this.corral.store.smartmob.get(user.id, slug);
    return p && this.view(user, p);
  }

  /** The process with its instance; a slug whose instance was deleted elsewhere is forgotten. */
  private async view(user: User, process: SmartmobProcess): Promise<ProcessView | undefined> {
    try {
      return { process, instance: await this.service.get(user, process.instanceId) };
    } catch (e) {
      if (!(isCorralError(e) && e.code === 'instance_not_found')) throw e;
      await this.corral.store.smartmob.delete(user.id, process.slug);
      return undefined;
    }
  }
}
