/** Opens the job service over the process driver's sandboxed runner. */
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { ProcessJobRunner } from '../../drivers/process/job-runner.js';
import type { Store } from '../../store/index.js';
import type { Config } from '../config.js';
import { errors } from '../errors.js';
import type { JobRunner } from './runner.js';
import { JobService } from './service.js';
import { jobWorkRoot, sweepJobWorkRoots } from './work-root.js';
import type { Drivers } from '../drivers/index.js';
import { routeJobs } from '../drivers/job-runners.js';

export { JobService } from './service.js';
export type { JobListener, Attachment } from './service.js';

/** A runner that refuses every job, saying why (no working sandbox on this machine). */
function unavailableRunner(reason: string): JobRunner {
  const refuse = () => {
    throw errors.driverUnavailable(`jobs cannot run on this server: ${reason}`);
  };
  return { name: 'unavailable', admit: refuse, run: async () => refuse(), close: async () => {} };
}

/** `drivers`: the runners and version probes of drivers other than process (src/core/drivers). */
export async function openJobs(config: Config, store: Store, log: Logger, drivers?: Pick<Drivers, 'jobRunners' | 'versionProbes'>): Promise<JobService> {
  const c = config.jobs;
  const work = jobWorkRoot(config.data, c.workDirs);
  // Job dirs a killed server left (pre-started sandboxes, running jobs), wherever it kept them.
  await sweepJobWorkRoots(config.data);
  const runner = await ProcessJobRunner.create({
    root: work.root,
    hide: [config.data, work.root],
    etcRoot: path.join(config.data, 'sandbox-etc'),
    warm: c.enabled ? c.warmSandboxes || 2 * (c.poolSize || os.availableParallelism()) : 0,
    maxIdle: c.maxIdleSandboxes || undefined,
    idleSeconds: c.sandboxIdleSeconds,
    jobsPerSandbox: c.jobsPerSandbox,
    defaults: {
      network: false,
      readOnlyPaths: [],
      limits: { memoryBytes: c.memoryBytes, pids: c.pids, cpus: c.cpus },
      rlimits: { fileSizeBytes: c.fileSizeBytes, openFiles: c.openFiles, coreBytes: 0 },
    },
    onError: (err) => log.error({ err }, 'job sandbox failed'),
    sandbox: config.drivers.process.sandbox !== 'none',
    bwrap: config.drivers.process.bwrap,
    network: { outbound: config.drivers.process.outbound ?? 'none', hostNetwork: config.drivers.process.hostNetwork ?? false, pasta: config.drivers.process.pasta },
  });
  if ('unavailable' in runner) log.warn({ reason: runner.unavailable }, 'jobs are unavailable');
  else if (config.drivers.process.sandbox === 'none') log.warn('jobs on the process driver run UNSANDBOXED (drivers.process.sandbox: none)');
  const processRunner = 'unavailable' in runner ? unavailableRunner(runner.unavailable) : runner;
  if (!drivers?.jobRunners.size) return JobService.open(c, store, processRunner, log);
  return JobService.open(c, store, routeJobs(processRunner, drivers.jobRunners), log, {
    defaultDriver: config.drivers.default,
    probe: async (driver, image, command) => drivers.versionProbes.get(driver)?.(image, command),
  });
}
