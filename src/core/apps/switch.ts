/**
 * A switch: from the copies that serve now to the copies of a release (a new one, or the
 * same one for a restart). Every step is written to the store before it acts:
 *
 *   release   the Procfile's `release:` command runs in its own sandbox; failure aborts
 *   starting  the new copies start next to the old ones (an app without a port stops the
 *             old ones first) and must get ready: port answers / health path 2xx-3xx
 *   (commit)  one transaction: new copies active, old ones draining, current release set —
 *             the proxy sends new requests to the new copies from here on
 *   draining  old copies finish in-flight requests for drainSeconds, then stop and go
 *
 * A failure before the commit removes the new copies and leaves the old ones serving (an
 * app without a port gets its old copies started again). `recover` finishes or undoes a
 * switch a server restart interrupted.
 */
import type { Logger } from 'pino';
import type { Store } from '../../store/index.js';
import type { AppRecord, CopyRecord, ReleaseRecord, SwitchState } from '../../store/apps.js';
import type { User } from '../accounts/types.js';
import { errors } from '../errors.js';
import type { InstanceService } from '../instances/service.js';
import type { AppsConfig } from './config.js';
import type { Copies, CopyFailure } from './copies.js';

export interface SwitchDeps {
  store: Store;
  copies: Copies;
  instances: InstanceService;
  config: AppsConfig;
  log: Logger;
  /** The routes changed: the proxy drops its cached lookups. */
  changed: () => void;
}

/** The copies a release runs: formation counts for the process types its Procfile has. */
export function wanted(app: AppRecord, release: ReleaseRecord): { type: string; index: number }[] {
  const out: { type: string; index: number }[] = [];
  for (const [type, n] of Object.entries(app.formation)) {
    if (type === 'release' || !release.processTypes.includes(type)) continue;
    for (let i = 1; i <= n; i++) out.push({ type, index: i });
  }
  return out;
}

export class Switcher {
  constructor(private readonly d: SwitchDeps) {}

  /**
   * Runs the switch to `release` up to the commit and returns; the drain goes on in
   * `drained`. Throws `deploy_failed` (with state, exit code and log lines) when the new
   * copies do not get ready; the old copies then still serve.
   */
  async run(app: AppRecord, owner: User, release: ReleaseRecord, opts: { restart?: boolean } = {}): Promise<{ drained: Promise<void> }> {
    const { store, copies } = this.d;
    const old = (await store.apps.copies(app.id)).filter((c) => c.role === 'active');
    const want = wanted(app, release);
    if (!want.length) {
      throw errors.validation(
        `formation: v${release.version}'s Procfile has none of the app's process types (${Object.keys(app.formation).join(', ') || 'none'}); its types: ${release.processTypes.join(', ')}`,
      );
    }
    const hasPort = want.some((w) => w.type === 'web');
    const state = (phase: SwitchState['phase']): SwitchState => ({ version: release.version, phase, startedAt: Date.now() });

    if (release.releaseCommand && !opts.restart) {
      await store.apps.update(app.id, { switch: state('release') });
      await store.apps.updateRelease(app.id, release.version, { status: 'releasing' });
      const failure = await this.releasePhase(app, owner, release, old);
      if (failure) return this.fail(app, owner, release, failure, [], [], old.length > 0, opts);
    }

    await store.apps.update(app.id, { switch: state('starting') });
    if (!opts.restart) await store.apps.updateRelease(app.id, release.version, { status: 'starting' });
    // Without a port nothing is served while both run, and two copies of a worker may clash: stop first.
    const stopped = hasPort ? [] : old;
    for (const c of stopped) await this.setDesired(owner, c, 'stop');

    const started: (CopyRecord & { id: string })[] = [];
    try {
      for (const w of want) {
        const replacing = old.find((c) => c.processType === w.type && c.index === w.index) ?? old[started.length];
        const instance = replacing && (await copies.instanceOf(replacing));
        started.push(await copies.start(app, owner, release, { ...w, role: 'new', replacing: instance?.id }));
      }
    } catch (e) {
      await this.undo(owner, started, stopped);
      await this.clearSwitch(app, release, opts, { status: 'failed', error: (e as Error).message });
      throw e;
    }
    const failures = await Promise.all(started.map((c) => copies.waitReady(owner, c, release)));
    const failure = failures.find((f) => f !== undefined);
    if (failure) return this.fail(app, owner, release, failure, started, stopped, old.length > 0, opts);

    // The moment of the switch.
    const previous = app.currentVersion;
    await store.apps.commitSwitch({ id: app.id, version: release.version, switch: state('draining') }, [
      ...started.map((c) => ({ ownerId: c.ownerId, instanceName: c.instanceName, role: 'active' as const })),
      ...old.map((c) => ({ ownerId: c.ownerId, instanceName: c.instanceName, role: 'draining' as const })),
    ]);
    if (!opts.restart) {
      await store.apps.updateRelease(app.id, release.version, { status: 'active', finishedAt: Date.now(), error: null });
      if (previous !== null && previous !== release.version) await store.apps.updateRelease(app.id, previous, { status: 'superseded' });
    }
    this.d.changed();
    this.d.log.info({ app: `${app.ownerName}/${app.name}`, version: release.version }, 'app switched to a new release');
    const drainSeconds = hasPort ? (release.settings.drainSeconds ?? this.d.config.drainSeconds) : 0;
    return { drained: this.drain(app, owner, old, drainSeconds) };
  }

  /** Old copies finish what they serve, then stop and go; the switch is over. */
  async drain(app: AppRecord, owner: User, old: CopyRecord[], seconds: number): Promise<void> {
    if (seconds > 0 && old.length) await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    await Promise.all(old.map((c) => this.d.copies.remove(owner, c)));
    await this.d.store.apps.update(app.id, { switch: null });
  }

  /**
   * After a server restart: a switch that had not committed is undone (its new copies go,
   * old copies an app without a port had stopped start again, the release is failed); one
   * that had committed finishes its drain.
   */
  async recover(app: AppRecord, owner: User): Promise<void> {
    const sw = app.switch;
    if (!sw) return;
    const all = await this.d.store.apps.copies(app.id);
    if (sw.phase === 'draining') {
      await this.drain(app, owner, all.filter((c) => c.role === 'draining'), 0);
      return;
    }
    const fresh = all.filter((c) => c.role === 'new' || c.role === 'release');
    const active = all.filter((c) => c.role === 'active');
    await Promise.all(fresh.map((c) => this.d.copies.remove(owner, c)));
    for (const c of active) await this.setDesired(owner, c, 'start');
    const release = await this.d.store.apps.release(app.id, sw.version);
    const restart = release?.status === 'active';
    if (release && !restart) {
      await this.d.store.apps.updateRelease(app.id, sw.version, { status: 'failed', finishedAt: Date.now(), error: 'interrupted by a server restart' });
    }
    await this.d.store.apps.update(app.id, { switch: null });
  }

  private async releasePhase(app: AppRecord, owner: User, release: ReleaseRecord, old: CopyRecord[]): Promise<CopyFailure | undefined> {
    const { copies } = this.d;
    const replacing = old[0] && (await copies.instanceOf(old[0]));
    let c: (CopyRecord & { id: string }) | undefined;
    try {
      c = await copies.start(app, owner, release, { type: 'release', index: 1, role: 'release', replacing: replacing?.id });
      return await copies.waitExit(owner, c);
    } finally {
      if (c) await copies.remove(owner, c);
    }
  }

  /** Removes the new copies, restarts what was stopped, records the failure and throws it. */
  private async fail(
    app: AppRecord,
    owner: User,
    release: ReleaseRecord,
    f: CopyFailure,
    started: CopyRecord[],
    stopped: CopyRecord[],
    hadCopies: boolean,
    opts: { restart?: boolean },
  ): Promise<never> {
    await this.undo(owner, started, stopped);
    const what = opts.restart ? `restarting v${release.version}` : `release v${release.version}`;
    const after = !hadCopies ? 'nothing ran before it' : stopped.length ? 'the previous copies were started again' : 'the previous copies keep serving';
    const message = `${what} failed: ${f.copy} ${f.reason}; ${after}`;
    await this.clearSwitch(app, release, opts, { status: 'failed', error: `${f.copy} ${f.reason}`, logs: f.logs });
    this.d.log.info({ app: `${app.ownerName}/${app.name}`, version: release.version, reason: f.reason }, 'app release failed');
    throw errors.deployFailed(message, {
      release: release.version,
      copy: f.copy,
      state: f.state,
      exitCode: f.exitCode,
      exitSignal: f.exitSignal,
      logs: f.logs,
    });
  }

  private async undo(owner: User, started: CopyRecord[], stopped: CopyRecord[]): Promise<void> {
    await Promise.all(started.map((c) => this.d.copies.remove(owner, c)));
    for (const c of stopped) await this.setDesired(owner, c, 'start');
  }

  private async clearSwitch(
    app: AppRecord,
    release: ReleaseRecord,
    opts: { restart?: boolean },
    outcome: { status: 'failed'; error: string; logs?: string[] },
  ): Promise<void> {
    if (!opts.restart) {
      await this.d.store.apps.updateRelease(app.id, release.version, { ...outcome, finishedAt: Date.now() });
    }
    await this.d.store.apps.update(app.id, { switch: null });
  }

  private async setDesired(owner: User, c: CopyRecord, what: 'start' | 'stop'): Promise<void> {
    const r = await this.d.copies.instanceOf(c);
    if (r) await this.d.instances[what](owner, r.id);
  }
}
