/**
 * Copies: each running copy of an app's process type is one instance (own sandbox, own
 * port, own restart policy, own logs — tapped into the app's log, logs.ts), created through the instance service so quotas,
 * credits and the supervisor treat it like any other. Its name says what it is:
 * `{app}.{type}.{n}` (with a `.k` suffix while an older copy still holds that name). The
 * copy row is written before the instance, so a server restart can always find and
 * finish or undo what a switch began.
 */
import { rm } from 'node:fs/promises';
import type { Store } from '../../store/index.js';
import type { AppRecord, CopyRecord, CopyRole, ReleaseRecord } from '../../store/apps.js';
import type { InstanceRecord } from '../../store/instances.js';
import type { User } from '../accounts/types.js';
import { isCorralError } from '../errors.js';
import type { InstanceService } from '../instances/service.js';
import type { InstanceSpecInput } from '../instances/spec.js';
import { describeExit } from '../instances/supervisor.js';
import type { ReleaseArchives } from './archives.js';
import type { AppsConfig } from './config.js';
import { copyLabel, type AppLogs } from './logs.js';
import { probe } from './readiness.js';
import type { Rotation } from './rotation.js';

const POLL_MS = 100;
const LOG_LINES = 20;

/** Why a copy did not come up: what the deploy answers with. */
export interface CopyFailure {
  copy: string;
  reason: string;
  state: string;
  exitCode: number | null;
  exitSignal: string | null;
  logs: string[];
}

export class Copies {
  constructor(
    private readonly store: Store,
    private readonly instances: InstanceService,
    private readonly archives: ReleaseArchives,
    private readonly rotation: Rotation,
    private readonly config: AppsConfig,
    private readonly logs: AppLogs,
  ) {}

  /**
   * Writes the copy row, then creates its instance from the release's source. `replacing`:
   * the instance this copy takes over from (quotas count the pair once).
   */
  async start(
    app: AppRecord,
    owner: User,
    release: ReleaseRecord,
    c: { type: string; index: number; role: CopyRole; replacing?: string | undefined },
  ): Promise<CopyRecord & { id: string }> {
    const name = await this.freeName(app, c.type, c.index);
    const row = { ownerId: app.ownerId, instanceName: name, appId: app.id, version: release.version, processType: c.type, index: c.index, role: c.role };
    await this.store.apps.insertCopy(row);
    let file: string | undefined;
    try {
      if (!release.archive) throw new Error(`the source of v${release.version} is no longer kept`);
      file = await this.archives.linkOut(app.id, release.archive);
      const created = await this.instances.create(owner, this.specOf(name, c.type, release), { file, fileName: `${app.name}-v${release.version}.archive` }, {
        ...(c.replacing && { replacing: c.replacing }),
      });
      await this.logs.tap(app.id, created.id, copyLabel(app.name, name));
      if (c.type === 'web') this.rotation.watch(created.id, { ownerId: app.ownerId, name, healthPath: release.settings.health?.path });
      return { ...row, createdAt: Date.now(), id: created.id };
    } catch (e) {
      // The instance service takes the link only when it creates the instance: a refusal
      // (quota, credits) leaves it in tmp.
      if (file) await rm(file, { force: true });
      await this.store.apps.deleteCopy(app.ownerId, name);
      throw e;
    }
  }

  /** Stops and deletes the copy's instance (with its stop signal and grace), then its row. */
  async remove(owner: User, c: Pick<CopyRecord, 'ownerId' | 'instanceName'>): Promise<void> {
    const r = await this.store.instances.byOwnerAndName(c.ownerId, c.instanceName);
    if (r) {
      this.rotation.unwatch(r.id);
      await this.instances.remove(owner, r.id).catch((e: unknown) => {
        if (!isCorralError(e) || e.code !== 'instance_not_found') throw e;
      });
      this.logs.untap(r.id); // after its last lines (the stop) reached the app's log
    }
    await this.store.apps.deleteCopy(c.ownerId, c.instanceName);
  }

  instanceOf(c: Pick<CopyRecord, 'ownerId' | 'instanceName'>): Promise<InstanceRecord | undefined> {
    return this.store.instances.byOwnerAndName(c.ownerId, c.instanceName);
  }

  /**
   * Waits until the copy serves: a web copy when its port answers, any other once it has run
   * `settleSeconds` without exiting. A copy that crashes (backoff, failed, exited) or takes
   * longer than the timeout has failed.
   */
  async waitReady(owner: User, c: Pick<CopyRecord, 'ownerId' | 'instanceName' | 'processType'>, release: ReleaseRecord): Promise<CopyFailure | undefined> {
    const timeoutS = release.settings.health?.timeoutSeconds ?? this.config.readyTimeoutSeconds;
    const until = Date.now() + timeoutS * 1000;
    for (;;) {
      const r = await this.instanceOf(c);
      if (!r) return { copy: c.instanceName, reason: 'it was deleted', state: 'deleted', exitCode: null, exitSignal: null, logs: [] };
      if (['backoff', 'failed', 'exited'].includes(r.state)) return this.failure(owner, r, crashReason(r));
      if (r.state === 'running') {
        const port = r.ports.find((p) => p.name === 'web');
        if (c.processType === 'web' && port) {
          if (await probe(port.hostPort, release.settings.health?.path)) {
            this.rotation.markReady(r.id);
            return undefined;
          }
        } else if (r.startedAt !== null && Date.now() - r.startedAt >= this.config.settleSeconds * 1000) {
          return undefined;
        }
      }
      if (Date.now() > until) {
        const what = release.settings.health?.path ? `its health path ${release.settings.health.path} did not answer 2xx/3xx` : 'its port did not accept connections';
        return this.failure(owner, r, `not ready after ${timeoutS} s: ${r.state === 'running' ? what : `still ${r.state}`}`);
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  /** Waits for a `release:` copy to exit: exit code 0 passes, anything else is the failure. */
  async waitExit(owner: User, c: Pick<CopyRecord, 'ownerId' | 'instanceName'>): Promise<CopyFailure | undefined> {
    const until = Date.now() + this.config.releaseTimeoutSeconds * 1000;
    for (;;) {
      const r = await this.instanceOf(c);
      if (!r) return { copy: c.instanceName, reason: 'it was deleted', state: 'deleted', exitCode: null, exitSignal: null, logs: [] };
      if (r.state === 'exited') return undefined;
      if (r.state === 'failed' || r.state === 'backoff') return this.failure(owner, r, `the release command failed: ${r.lastError ?? r.state}`);
      if (Date.now() > until) return this.failure(owner, r, `the release command ran longer than ${this.config.releaseTimeoutSeconds} s`);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  /** The state, exit and last log lines of a copy, for the deploy's answer and the release record. */
  async failure(owner: User, r: InstanceRecord, reason: string): Promise<CopyFailure> {
    let logs: string[] = [];
    try {
      const { log } = await this.instances.output(owner, r.id);
      await log.flush();
      logs = log.recent(LOG_LINES).map((e) => (e.stream === 'corral' ? `[corral] ${e.line}` : e.line));
    } catch {
      /* deleted meanwhile: no lines */
    }
    return { copy: r.name, reason, state: r.state, exitCode: r.exitCode, exitSignal: r.exitSignal, logs };
  }

  /** The instance spec of one copy: the release's process type, config vars and settings. */
  private specOf(name: string, type: string, release: ReleaseRecord): InstanceSpecInput {
    const s = release.settings;
    const isRelease = type === 'release';
    return {
      name,
      process: type,
      env: release.configVars,
      ports: type === 'web' ? [{ name: 'web' }] : [],
      restart: isRelease ? 'never' : (s.restart ?? 'always'),
      ...(s.limits && { limits: s.limits }),
      ...(s.stopSignal && { stopSignal: s.stopSignal }),
      ...(s.stopGraceSeconds !== undefined && { stopGraceSeconds: s.stopGraceSeconds }),
      ...(s.driver && { driver: s.driver }),
      ...(s.image && { image: s.image }),
    };
  }

  /** `{app}.{type}.{n}`, or with `.2`, `.3` … while an older copy (or any instance) has that name. */
  private async freeName(app: AppRecord, type: string, index: number): Promise<string> {
    const base = `${app.name}.${type}.${index}`;
    for (let k = 1; ; k++) {
      const name = k === 1 ? base : `${base}.${k}`;
      const taken = (await this.store.instances.byOwnerAndName(app.ownerId, name)) || (await this.store.apps.copyByInstance(app.ownerId, name));
      if (!taken) return name;
    }
  }
}

/** "crash-looping (backoff): exited with code 1". */
function crashReason(r: InstanceRecord): string {
  const exit = r.lastError ?? (r.exitCode !== null || r.exitSignal ? describeExit({ code: r.exitCode, signal: r.exitSignal, oomKilled: false }) : r.state);
  if (r.state === 'backoff') return `crash-looping (backoff, ${r.restartCount} restart${r.restartCount === 1 ? '' : 's'}): ${exit}`;
  return `${r.state}: ${exit}`;
}
