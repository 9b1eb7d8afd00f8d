/**
 * App-level logs. Each copy of an app is an instance with a log of its own, and copies are
 * replaced at every switch, so an app's output would not outlive a deploy. Here every
 * copy's lines are tapped into one log per app (the same InstanceLog: memory ring plus
 * rotated NDJSON files, in `apps/{id}/logs/`), each marked with the copy it came from
 * (`web.1`, `release.1`…), next to corral's notes about switches. It lives as long as the
 * app and goes when the app is deleted.
 */
import { mkdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { InstanceLog, type LogsConfig } from '../instances/logs.js';
import type { InstanceService } from '../instances/service.js';
import { systemUser } from '../accounts/system-user.js';

const reader = systemUser('app-logs');

export class AppLogs {
  private readonly logs = new Map<string, InstanceLog>();
  /** Unsubscribers of the tapped copies, by instance id. */
  private readonly taps = new Map<string, () => void>();

  constructor(
    private readonly dataRoot: string,
    private readonly config: LogsConfig,
    private readonly instances: InstanceService,
  ) {}

  private dir(appId: string): string {
    return path.join(this.dataRoot, 'apps', appId, 'logs');
  }

  /** The app's log (opened on first use). */
  of(appId: string): InstanceLog {
    let log = this.logs.get(appId);
    if (!log) {
      mkdirSync(this.dir(appId), { recursive: true, mode: 0o700 });
      log = new InstanceLog(this.dir(appId), this.config);
      this.logs.set(appId, log);
    }
    return log;
  }

  /**
   * Feeds the copy's lines into the app's log, marked `copy`. Lines the copy printed before
   * (since its start, or since the last of its lines the app's log holds, after a server
   * restart) come first, in the same tick as the subscription: no gap, no repeat.
   */
  async tap(appId: string, instanceId: string, copy: string): Promise<void> {
    if (this.taps.has(instanceId)) return;
    let log: InstanceLog;
    try {
      log = (await this.instances.output(reader, instanceId)).log;
    } catch {
      return; // deleted meanwhile
    }
    if (this.taps.has(instanceId)) return;
    const app = this.of(appId);
    const seen = app.recent(Infinity, 0, (e) => e.source === copy).at(-1)?.t ?? 0;
    for (const e of log.recent(Infinity, seen + 1)) app.relay(e, copy);
    this.taps.set(instanceId, log.subscribe((e) => app.relay(e, copy)));
  }

  /** Stops feeding a copy's lines (it is being removed). */
  untap(instanceId: string): void {
    this.taps.get(instanceId)?.();
    this.taps.delete(instanceId);
  }

  /** Closes the app's log and removes its files (the app is deleted). */
  async drop(appId: string, instanceIds: string[]): Promise<void> {
    for (const id of instanceIds) this.untap(id);
    const log = this.logs.get(appId);
    this.logs.delete(appId);
    await log?.close();
    await rm(this.dir(appId), { recursive: true, force: true });
  }

  async close(): Promise<void> {
    for (const off of this.taps.values()) off();
    this.taps.clear();
    await Promise.all([...this.logs.values()].map((l) => l.close()));
    this.logs.clear();
  }
}

/** `web.1` for the copy `shop.web.1` of the app `shop`. */
export const copyLabel = (appName: string, instanceName: string) =>
  instanceName.startsWith(`${appName}.`) ? instanceName.slice(appName.length + 1) : instanceName;
