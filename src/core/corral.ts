/**
 * The core: everything corral does, composed over one store, with no knowledge of HTTP.
 * The http, proxy and cli layers call into this object.
 */
import type { Logger } from 'pino';
import { Store } from '../store/index.js';
import { Accounts } from './accounts/index.js';
import type { Config } from './config.js';
import { prepareDataDir } from './data-dir.js';
import { openJobs, type JobService } from './jobs/index.js';
import { Instances } from './instances/index.js';
import { openStats, type InstanceStats } from './instances/stats.js';
import { openApps, type AppService } from './apps/index.js';
import { openDrivers } from './drivers/index.js';
import { Relay } from './relay/index.js';
import { openLeases } from './cluster/index.js';
import { Credits } from './credits/index.js';
import { Metrics, watchCore } from './metrics.js';

export class Corral {
  /** Short sandboxed code runs (set in open). */
  jobs!: JobService;
  /** Supervised long-lived workloads (set in open). */
  instances!: Instances;
  /** Live CPU and memory samples of running instances, an hour kept (set in open). */
  stats!: InstanceStats;
  /** Procfile apps: releases, switches, formation (set in open). */
  apps!: AppService;
  /** WebSocket rendezvous channels: one host side, typed peers. */
  readonly relay: Relay;
  /** Prometheus metrics of this server (GET /metrics). */
  readonly metrics = new Metrics();
  /** The credits ledger, metering, quotas and usage (set in open; see credits/index.ts). */
  credits!: Credits;

  private constructor(
    readonly config: Config,
    readonly log: Logger,
    readonly store: Store,
    readonly accounts: Accounts,
  ) {
    this.relay = new Relay(config.relay, store.relayClaims);
  }

  static async open(config: Config, log: Logger): Promise<Corral> {
    await prepareDataDir(config.data);
    const store = await Store.open(config.data, config.databaseUrl);
    try {
      const accounts = await Accounts.open(config, store);
      const corral = new Corral(config, log, store, accounts);
      // The proxy role only logs users in and forwards: no jobs, instances or drivers here.
      if (config.role === 'proxy') return corral;
      await corral.bootstrapAdmin();
      const drivers = await openDrivers(config, log);
      corral.jobs = await openJobs(config, store, log, drivers);
      corral.instances = await Instances.open(config, store, drivers.workloads, log, await openLeases(config, store, log));
      corral.stats = await openStats(config.instances.stats, store, corral.instances);
      corral.credits = await Credits.open(config, store, corral.instances, corral.metrics, log);
      corral.instances.service.useGate(corral.credits);
      corral.apps = await openApps(config, store, corral.instances.service, log);
      corral.jobs.useGate(corral.credits.jobs);
      watchCore(corral.metrics, corral);
      return corral;
    } catch (e) {
      await store.close();
      throw e;
    }
  }

  private async bootstrapAdmin(): Promise<void> {
    const created = await this.accounts.users.ensureAdmin(this.config.adminPassword);
    if (!created) return;
    if (created.generatedPassword) {
      // Printed once, on stderr, and never logged.
      process.stderr.write(
        `\ncorral: created the first admin.\n  user:     admin\n  password: ${created.generatedPassword}\n` +
          `  (shown only now; change it with \`corral user passwd admin\`)\n\n`,
      );
    } else {
      this.log.info('created the first admin "admin" with the password from CORRAL_ADMIN_PASSWORD');
    }
  }

  async close(): Promise<void> {
    this.relay.close();
    // Workloads get their stop signal and grace period; the server waits for them.
    await this.apps?.close();
    this.stats?.close();
    await this.instances?.close();
    await this.jobs?.close();
    // After workloads and jobs: their final debits are written before the store closes.
    await this.credits?.close();
    await this.store.close();
  }
}
