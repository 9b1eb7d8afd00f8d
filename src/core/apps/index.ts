/**
 * Apps: Procfile sources deployed as numbered releases and run as a formation of copies,
 * switched without downtime (docs/apps.md). Built over the instance service: each copy is
 * an instance. `Apps.open` finishes or undoes switches a server restart interrupted.
 */
import type { Logger } from 'pino';
import type { Store } from '../../store/index.js';
import type { Config } from '../config.js';
import type { InstanceService } from '../instances/service.js';
import { AppService } from './service.js';

export async function openApps(config: Config, store: Store, instances: InstanceService, log: Logger): Promise<AppService> {
  const service = new AppService(store, instances, config, log);
  await service.open();
  return service;
}

export * from './spec.js';
export type { AppService, AppTarget } from './service.js';
