/** Several job runners behind the one the job service uses: each job goes to its runtime's driver. */
import { errors } from '../errors.js';
import type { JobRunner, JobSpec, RunningJob } from '../jobs/runner.js';
import type { OutputStream } from '../../drivers/driver.js';

export function routeJobs(processRunner: JobRunner, others: Map<string, JobRunner>): JobRunner {
  const runnerFor = (spec: JobSpec): JobRunner => {
    if (!spec.driver || spec.driver === 'process') return processRunner;
    const r = others.get(spec.driver);
    if (!r) throw errors.driverUnavailable(`jobs on the ${spec.driver} driver cannot run on this server`);
    return r;
  };
  return {
    name: [processRunner.name, ...others.keys()].join('+'),
    admit: (spec: JobSpec) => runnerFor(spec).admit?.(spec),
    run: (spec: JobSpec, onOutput: (stream: OutputStream, chunk: Buffer) => void): Promise<RunningJob> => runnerFor(spec).run(spec, onOutput),
    close: async () => {
      await Promise.all([processRunner.close(), ...[...others.values()].map((r) => r.close())]);
    },
  };
}
