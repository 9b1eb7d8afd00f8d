/**
 * Instances: long-lived supervised workloads. `Instances.open` builds the supervisor over a
 * driver and the service users call; `close` stops every workload with its grace period.
 */
import type { Logger } from 'pino';
import type { Driver } from '../../drivers/driver.js';
import type { Store } from '../../store/index.js';
import type { Config } from '../config.js';
import { soleLeases, type InstanceLeases } from '../cluster/leases.js';
import { DiskWatch } from './disk-watch.js';
import { InstanceEvents } from './events.js';
import { InstanceService } from './service.js';
import { sourcePreparer } from './source.js';
import { InFlight } from '../sources/in-flight.js';
import { Supervisor } from './supervisor.js';

export class Instances {
  private constructor(
    readonly service: InstanceService,
    readonly supervisor: Supervisor,
    private readonly driver: Driver,
    /** Stops instances over their disk limit. */
    readonly diskWatch: DiskWatch,
    /** Source downloads and unpacks in progress, cancelled by a delete or by close(). */
    private readonly sources: InFlight,
  ) {}

  /** `leases`: which instances this manager may supervise (all of them unless managers share a database). */
  static async open(config: Config, store: Store, driver: Driver, log: Logger, leases: InstanceLeases = soleLeases): Promise<Instances> {
    const events = new InstanceEvents();
    const sources = new InFlight();
    const supervisor = new Supervisor(store, driver, config.instances, config.data, events, log, sourcePreparer(config, sources), leases);
    await supervisor.open();
    const service = new InstanceService(store, supervisor, events, config.instances, config.data, sources, leases);
    const diskWatch = new DiskWatch(store, service, config.instances, config.data, log);
    diskWatch.start();
    return new Instances(service, supervisor, driver, diskWatch, sources);
  }

  async close(): Promise<void> {
    // An unpack can take minutes: cancelled, not waited for (the next start unpacks again).
    this.sources.cancelAll();
    await this.diskWatch.close();
    await this.supervisor.close();
    await this.driver.close();
  }
}

export * from './spec.js';
export type { InstanceEvent } from './events.js';
export type { InstanceTarget, UploadedArchive } from './service.js';
export { forwardBounded, forwardBoundedBatches, type BatchSink, type LineBatch, type LogEntry, type LineSink } from './logs.js';
