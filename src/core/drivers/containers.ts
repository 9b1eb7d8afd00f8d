/**
 * The container drivers (docker, swarm): connected only when enabled, and loaded only then
 * (index.ts imports this module dynamically), so a process-only server does not carry them.
 */
import path from 'node:path';
import type { Logger } from 'pino';
import type { Driver } from '../../drivers/driver.js';
import { DockerDriver } from '../../drivers/docker/docker-driver.js';
import { connectEngine, engineAddress, engineVersion, ensureImage, type Engine } from '../../drivers/docker/engine.js';
import { ImagePolicy } from '../../drivers/docker/images.js';
import { DockerJobRunner } from '../../drivers/docker/job-runner.js';
import { noNewPrivilegesNote } from '../../drivers/swarm/privileges.js';
import { SwarmDriver } from '../../drivers/swarm/swarm-driver.js';
import type { Config } from '../config.js';
import { errors } from '../errors.js';
import type { JobRunner } from '../jobs/runner.js';
import type { DriversConfig } from './config.js';
import type { Admit } from './driver-set.js';
import { serverIdOf, type VersionProbe } from './index.js';

/** What openDrivers collects; the container drivers add theirs. */
export interface DriverTables {
  byName: Map<string, Driver>;
  missing: Map<string, string>;
  admits: Map<string, Admit>;
  jobRunners: Map<string, JobRunner>;
  versionProbes: Map<string, VersionProbe>;
}

export async function openContainerDrivers(config: Config, log: Logger, t: DriverTables): Promise<void> {
  const c = config.drivers;
  const enabled = new Set(c.enabled);
  const { byName, admits, jobRunners, versionProbes } = t;
  // Both run on the engine of the docker settings (for swarm, it must be a swarm manager).
  const d = c.docker;
  if (enabled.has('docker')) {
    await openOrNote('docker', `no Docker engine at ${engineAddress(d.host)}`, config, log, t, async () => {
      const engine = connectEngine(d.host);
      const version = await engineVersion(engine);
      const serverId = serverIdOf(config.data);
      const runtimeImages = config.jobs.runtimes.filter((r) => r.image && (r.driver ?? c.default) === 'docker').map((r) => r.image!);
      const trusted = new Set([...(d.defaultImage ? [d.defaultImage] : []), ...runtimeImages]);
      const policy = new ImagePolicy(d.images, trusted);
      byName.set('docker', new DockerDriver({ engine, serverId, config: d }));
      admits.set('docker', imageAdmit('docker', engine, d, policy));
      const runner = await DockerJobRunner.create({
        engine,
        serverId,
        config: d,
        root: path.join(config.data, 'jobs-docker'),
        warmImages: config.jobs.enabled ? [...new Set(runtimeImages)] : [],
        defaults: {
          memoryBytes: config.jobs.memoryBytes,
          pids: config.jobs.pids,
          cpus: config.jobs.cpus,
          fileSizeBytes: config.jobs.fileSizeBytes,
          openFiles: config.jobs.openFiles,
        },
        onError: (err) => log.error({ err }, 'docker job container failed'),
      });
      jobRunners.set('docker', runner);
      versionProbes.set('docker', async (image, command) => (image ? runner.version(image, command) : undefined));
      log.info({ engine: engineAddress(d.host), version, serverId }, 'docker driver ready');
    });
  }
  if (enabled.has('swarm')) {
    await openOrNote('swarm', `no swarm at ${engineAddress(d.host)}`, config, log, t, async () => {
      const engine = connectEngine(d.host);
      await engineVersion(engine);
      const swarm = ((await engine.info()) as { Swarm?: { LocalNodeState?: string; ControlAvailable?: boolean } }).Swarm;
      if (swarm?.LocalNodeState !== 'active' || !swarm.ControlAvailable) throw new Error('it is not a swarm manager (docker swarm init)');
      const policy = new ImagePolicy(d.images, new Set(d.defaultImage ? [d.defaultImage] : []));
      const driver = new SwarmDriver({
        engine,
        serverId: serverIdOf(config.data),
        config: d,
        pinToLocalNode: c.swarm.pinToLocalNode,
        allowNewPrivileges: c.swarm.allowNewPrivileges,
        portsSubnet: c.swarm.portsSubnet,
      });
      byName.set('swarm', driver);
      const admitImage = imageAdmit('swarm', engine, d, policy);
      // Refused before anything is stored when tasks would lack no-new-privileges (privileges.ts).
      admits.set('swarm', async (req) => {
        await driver.noNewPrivileges();
        await admitImage(req);
      });
      const privileges = noNewPrivilegesNote((await engine.version()).ApiVersion, c.swarm.allowNewPrivileges);
      if (!privileges.ok) log.warn(privileges.text);
      log.info({ engine: engineAddress(d.host) }, 'swarm driver ready');
    });
  }
}

/**
 * Opens one container driver. When it cannot be opened, a server whose default it is
 * refuses to start; otherwise the driver is noted as missing (requests naming it get the
 * reason) and the server starts without it.
 */
async function openOrNote(name: string, where: string, config: Config, log: Logger, t: DriverTables, open: () => Promise<void>): Promise<void> {
  try {
    await open();
  } catch (e) {
    const why = `${where}: ${(e as Error).message}`;
    if (config.drivers.default === name) throw errors.config(`drivers.default is ${name}, but ${why}`);
    t.missing.set(name, why);
    log.warn(why);
  }
}

/** Admission for a container driver: an image is needed, must be allowed, and must be on the engine. */
function imageAdmit(name: string, engine: Engine, d: DriversConfig['docker'], policy: ImagePolicy): Admit {
  return async (req) => {
    const image = req.image ?? d.defaultImage;
    if (!image) throw errors.validation(`image: the ${name} driver needs an image (or drivers.docker.defaultImage)`);
    if (req.image !== undefined && !policy.allows(req.image)) throw errors.imageNotAllowed(req.image);
    await ensureImage(engine, image, { pull: d.pull });
  };
}
