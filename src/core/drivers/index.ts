/**
 * Opens the drivers this server offers (config `drivers`): the process driver, and the docker
 * driver when enabled and its engine answers. Instances and job runtimes pick one by name;
 * what names none runs on `drivers.default`.
 */
import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Driver } from '../../drivers/driver.js';
import { ProcessDriver } from '../../drivers/process/process-driver.js';
import type { Config } from '../config.js';
import { errors } from '../errors.js';
import type { JobRunner } from '../jobs/runner.js';
import { DriverSet, type Admit } from './driver-set.js';

export { DriverSet } from './driver-set.js';
export type { DriverRequest } from './driver-set.js';

/** Runs a runtime's version command where its jobs run; undefined when it cannot. */
export type VersionProbe = (image: string | undefined, command: string) => Promise<string | undefined>;

export interface Drivers {
  /** What the supervisor talks to: routes each instance to its driver. */
  workloads: DriverSet;
  /** Job runners of the drivers other than process (whose runner the job service builds itself). */
  jobRunners: Map<string, JobRunner>;
  /** How to detect a runtime's version on each of those drivers. */
  versionProbes: Map<string, VersionProbe>;
}

/** Names this server's containers on a shared engine: stable across restarts of the same data dir. */
export function serverIdOf(dataDir: string): string {
  let real = path.resolve(dataDir);
  try {
    real = realpathSync(real);
  } catch {
    /* not created yet: the resolved path names it as well */
  }
  return createHash('sha256').update(real).digest('hex').slice(0, 12);
}

export async function openDrivers(config: Config, log: Logger): Promise<Drivers> {
  const c = config.drivers;
  const enabled = new Set(c.enabled);
  if (!enabled.has(c.default)) throw errors.config(`config key "drivers.default": "${c.default}" is not in drivers.enabled`);
  const byName = new Map<string, Driver>();
  const missing = new Map<string, string>();
  const admits = new Map<string, Admit>();
  const jobRunners = new Map<string, JobRunner>();
  const versionProbes = new Map<string, VersionProbe>();

  if (enabled.has('process')) {
    const p = c.process;
    byName.set('process', new ProcessDriver({ hide: [config.data], etcRoot: path.join(config.data, 'sandbox-etc'), sandbox: p.sandbox !== 'none', bwrap: p.bwrap, network: { outbound: p.outbound ?? 'none', hostNetwork: p.hostNetwork ?? false, pasta: p.pasta }, keeperDir: p.keeper !== false ? path.join(config.data, 'keeper') : undefined, warn: (m) => log.warn(m) }));
  }

  if (enabled.has('docker') || enabled.has('swarm')) {
    // dockerode and its dependencies (~25 MB) are loaded only when a container driver is on.
    const { openContainerDrivers } = await import('./containers.js');
    await openContainerDrivers(config, log, { byName, missing, admits, jobRunners, versionProbes });
  }
  return { workloads: new DriverSet(byName, c.default, missing, admits), jobRunners, versionProbes };
}
