/**
 * The docker driver: job latency on docker (cold: a container created per job; warm: taken
 * from the pool) next to `docker run --rm` of the same command and to the process driver's
 * runner; and instance start latency (start → first output line) on docker, on the process
 * driver and with `docker run --rm`. Runs on the engine at DOCKER_HOST, or starts a private
 * dockerd (as the tests do) with the test images.
 */
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Value } from '@sinclair/typebox/value';
import type { JobRunner, JobSpec } from '../src/core/jobs/runner.js';
import type { Driver, WorkloadSpec } from '../src/drivers/driver.js';
import { DockerConfigSchema, type DockerConfig } from '../src/drivers/docker/config.js';
import { DockerDriver } from '../src/drivers/docker/docker-driver.js';
import { connectEngine } from '../src/drivers/docker/engine.js';
import { DockerJobRunner } from '../src/drivers/docker/job-runner.js';
import { ProcessJobRunner } from '../src/drivers/process/job-runner.js';
import { ProcessDriver } from '../src/drivers/process/process-driver.js';
import { BUSYBOX_IMAGE, buildTestImages } from '../test/helpers/docker-images.js';
import { obtainEngine } from '../test/helpers/docker-engine.js';
import { tempDir } from '../test/helpers/server.js';
import { fmt, percentile, table, type Benchmark } from './lib.js';

const N = Number(process.env.BENCH_DOCKER_N ?? 30);
const COLD_N = Number(process.env.BENCH_DOCKER_COLD_N ?? 15);
const MiB = 1024 * 1024;
const LIMITS = { memoryBytes: 256 * MiB, pids: 64, cpus: 1, fileSizeBytes: 64 * MiB, openFiles: 256 };
const COMMAND = 'echo hi';

const jobSpec = (image?: string): JobSpec => ({
  id: 'bench',
  owner: 'bench',
  command: COMMAND,
  files: [{ path: 'main.sh', data: Buffer.from('echo hi\n') }],
  keepStdinOpen: false,
  timeoutMs: 30_000,
  limits: { ...LIMITS, outputBytes: MiB },
  network: false,
  readOnlyPaths: [],
  image,
  maxOutputFileBytes: MiB,
});

async function runJob(runner: JobRunner, spec: JobSpec): Promise<void> {
  const r = await (await runner.run(spec, () => {})).done;
  if (r.status !== 'ok' || r.stdout.toString() !== 'hi\n') throw new Error(`job ${r.status}: ${r.stderr.toString()}`);
}

/** Times `fn` n times; `before` runs untimed ahead of each (e.g. waiting for the pool to refill). */
async function timed(n: number, fn: () => Promise<unknown>, before: () => Promise<unknown> = async () => {}): Promise<number[]> {
  await before();
  await fn(); // warm-up
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    await before();
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
  }
  return out;
}

const cli = (host: string, args: string[]) =>
  new Promise<string>((resolve, reject) =>
    execFile('docker', args, { env: { ...process.env, DOCKER_HOST: host }, timeout: 60_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
  );

/** The previous workload's stop, awaited (untimed) before the next start. */
let stopping: Promise<unknown> = Promise.resolve();

/** Starts a workload and resolves at its first output (then kills it, off the clock). */
function startToOutput(driver: Driver, spec: WorkloadSpec): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = false;
    driver
      .start(spec, {
        output: () => {
          if (!seen) resolve();
          seen = true;
        },
        exit: () => (seen ? undefined : reject(new Error('exited without output'))),
      })
      .then((w) => {
        stopping = (async () => {
          while (!seen) await sleep(1);
          await w.stop('SIGKILL', 0);
        })();
      })
      .catch(reject);
  });
}

const row = (name: string, ms: number[], base?: number) => [
  name,
  fmt(percentile(ms, 50), 1),
  fmt(percentile(ms, 99), 1),
  base === undefined ? '' : `${fmt(percentile(ms, 50) / base, 1)}×`,
];

const bench: Benchmark = async () => {
  const engineInfo = await obtainEngine();
  if ('unavailable' in engineInfo) {
    return [{ title: 'Docker driver', markdown: `Not run: ${engineInfo.unavailable}.` }];
  }
  const host = engineInfo.host;
  process.env.DOCKER_HOST = host;
  const engine = connectEngine(host);
  const dirs: string[] = [];
  const closers: (() => Promise<unknown>)[] = [];
  try {
    await buildTestImages(engine);
    const config = (extra: Partial<DockerConfig>): DockerConfig => ({ ...(Value.Default(DockerConfigSchema, {}) as DockerConfig), ...extra });
    const data = await tempDir('corral-bench-docker-');
    dirs.push(data);
    const serverId = `bench${process.pid}`;
    const dockerRunner = async (warm: number) => {
      const r = await DockerJobRunner.create({
        engine,
        serverId: `${serverId}-${warm}`,
        config: config({ warmContainers: warm }),
        root: path.join(data, `jobs-docker-${warm}`),
        warmImages: warm ? [BUSYBOX_IMAGE] : [],
        defaults: LIMITS,
      });
      closers.push(() => r.close());
      return r;
    };
    const processRunner = await ProcessJobRunner.create({
      root: path.join(data, 'jobs'),
      hide: [data],
      warm: 4,
      defaults: { network: false, readOnlyPaths: [], limits: { memoryBytes: LIMITS.memoryBytes, pids: LIMITS.pids, cpus: LIMITS.cpus }, rlimits: { fileSizeBytes: LIMITS.fileSizeBytes, openFiles: LIMITS.openFiles, coreBytes: 0 } },
    });
    if ('unavailable' in processRunner) throw new Error(`process runner: ${processRunner.unavailable}`);
    closers.push(() => processRunner.close());

    // A pause before each, so the process runner's pool of sandboxes is refilled too.
    const proc = await timed(N, () => runJob(processRunner, jobSpec()), () => sleep(200));
    const warmRunner = await dockerRunner(2);
    // One job at a time, each after the pool refilled: what a job meets at a moderate rate
    // (a pool of K absorbs bursts of K jobs; beyond that jobs run cold).
    const warm = await timed(N, () => runJob(warmRunner, jobSpec(BUSYBOX_IMAGE)), () => warmRunner.warmed());
    const coldRunner = await dockerRunner(0);
    const cold = await timed(COLD_N, () => runJob(coldRunner, jobSpec(BUSYBOX_IMAGE)));
    const dockerRun = await timed(COLD_N, () => cli(host, ['run', '--rm', '--network', 'none', BUSYBOX_IMAGE, 'sh', '-c', COMMAND]));
    const base = percentile(proc, 50);

    // Instance start → first output line.
    const instanceSpec = (dataDir: string, image?: string): WorkloadSpec => ({
      instanceId: 'bench',
      owner: 'bench',
      generation: 1,
      command: ['sh', '-c', 'echo ready; exec sleep 60'],
      env: { PATH: '/usr/local/bin:/usr/bin:/bin' },
      cwd: '/data',
      dataDir,
      dataMount: '/data',
      mounts: [],
      ports: [],
      limits: { memoryBytes: 256 * MiB, pids: 64, cpus: 1 },
      image,
      network: false,
    });
    const processDriver = new ProcessDriver({ hide: [data], warn: () => {} });
    closers.push(() => processDriver.close());
    const dockerDriver = new DockerDriver({ engine, serverId, config: config({}) });
    closers.push(() => dockerDriver.close());
    let gen = 0;
    const settle = () => stopping;
    const dockerStart = await timed(COLD_N, () => startToOutput(dockerDriver, { ...instanceSpec(path.join(data, 'i-docker'), BUSYBOX_IMAGE), generation: ++gen }), settle);
    const processStart = await timed(COLD_N, () => startToOutput(processDriver, instanceSpec(path.join(data, 'i-process'))), settle);
    const dockerRunStart = await timed(COLD_N, () => cli(host, ['run', '--rm', '--network', 'none', BUSYBOX_IMAGE, 'sh', '-c', 'echo ready']));

    const version = engineInfo.version;
    return [
      {
        title: 'Docker driver: job latency',
        markdown: [
          `One job (\`${COMMAND}\` in a busybox image, no network, files written in, output collected), ` +
            `started and awaited by the job runner, ms; Docker ${version}. ${N} warm runs, ${COLD_N} cold ones.`,
          '',
          table(['how', 'p50', 'p99', '× process'], [
            row('process driver (bwrap, warm sandboxes)', proc, base),
            row('docker driver, warm pool', warm, base),
            row('docker driver, cold (create + start per job)', cold, base),
            row('`docker run --rm --network none` (CLI)', dockerRun, base),
          ]),
          '',
          `Targets: warm pool within 3× the process driver (${fmt(percentile(warm, 50) / base, 1)}×) and ≥5× faster than ` +
            `\`docker run --rm\` (${fmt(percentile(dockerRun, 50) / percentile(warm, 50), 1)}×). Warm runs wait for the pool to refill ` +
            'between jobs: a pool of K absorbs a burst of K jobs, jobs beyond it run cold.',
        ].join('\n'),
      },
      {
        title: 'Docker driver: instance start',
        markdown: [
          'Start → first output line of `echo ready; exec sleep 60`, ms.',
          '',
          table(['how', 'p50', 'p99', ''], [
            row('process driver', processStart),
            row('docker driver (create, attach, start)', dockerStart),
            row('`docker run --rm` (CLI, to exit)', dockerRunStart),
          ]),
        ].join('\n'),
      },
    ];
  } finally {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    for (const d of dirs) await rm(d, { recursive: true, force: true });
    await engineInfo.stop();
  }
};

export default bench;
