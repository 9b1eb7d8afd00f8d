/**
 * The docker driver: jobs through the HTTP API back to back (1 client and 16 clients, one
 * user: what a steady stream of jobs meets) on docker, on the process driver and with
 * `docker run --rm`, with `docker exec` into a running container as the engine's floor; job
 * latency of the runner alone (warm, cold); and instance start latency (start → first output
 * line) on docker, on the process driver and with `docker run --rm`. Runs on the engine at
 * DOCKER_HOST, or starts a private dockerd (as the tests do) with the test images.
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
import { Pool } from 'undici';
import { ADMIN_PASSWORD, createToken, login, spawnServer } from '../test/helpers/server.js';
import { fmt, percentile, table, type Benchmark } from './lib.js';

const N = Number(process.env.BENCH_DOCKER_N ?? 30);
const COLD_N = Number(process.env.BENCH_DOCKER_COLD_N ?? 15);
const MiB = 1024 * 1024;
const LIMITS = { memoryBytes: 256 * MiB, pids: 64, cpus: 1, fileSizeBytes: 64 * MiB, openFiles: 256 };
const COMMAND = 'echo hi';
/** Jobs through the API: per client, back to back. */
const API_N = Number(process.env.BENCH_DOCKER_API_N ?? 30);
const CLIENTS = Number(process.env.BENCH_DOCKER_CLIENTS ?? 16);
const PER_CLIENT = Number(process.env.BENCH_DOCKER_PER_CLIENT ?? 10);
const RUN_PER_CLIENT = Number(process.env.BENCH_DOCKER_RUN_PER_CLIENT ?? 2);

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

/** `clients` clients each running `fn` `each` times back to back: every call's ms, and calls per second. */
async function clients(n: number, each: number, fn: () => Promise<unknown>): Promise<{ ms: number[]; perSecond: number }> {
  const ms: number[] = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: n }, async () => {
      for (let i = 0; i < each; i++) {
        const t = performance.now();
        await fn();
        ms.push(performance.now() - t);
      }
    }),
  );
  return { ms, perSecond: ms.length / ((performance.now() - t0) / 1000) };
}

/**
 * A corral server (its own process, as in production) with the runtime `dsh` on docker and
 * the built-in `sh` on the process driver; `post` runs one `echo hi` job on a runtime.
 */
async function apiServer(host: string, data: string) {
  const server = await spawnServer(data, {
    DOCKER_HOST: host,
    CORRAL_DRIVERS__ENABLED: '["process","docker"]',
    CORRAL_DRIVERS__DOCKER__PULL: 'false',
    CORRAL_JOBS__RUNTIMES: JSON.stringify([{ name: 'dsh', driver: 'docker', image: BUSYBOX_IMAGE, command: 'sh main.sh' }]),
  });
  const pool = new Pool(server.url, { connections: CLIENTS, pipelining: 1 });
  const token = await createToken(server.url, await login(server.url, 'admin', ADMIN_PASSWORD), 'bench', ['jobs:write']);
  const post = async (runtime: string) => {
    const res = await pool.request({
      path: '/api/v1/jobs',
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ runtime, entry: `sh -c '${COMMAND}'` }),
    });
    const text = await res.body.text();
    const job = res.statusCode === 200 ? (JSON.parse(text) as { status: string; stdout: string }) : undefined;
    if (job?.status !== 'ok' || job.stdout !== 'hi\n') throw new Error(`job on ${runtime} failed: ${res.statusCode} ${text.slice(0, 300)}`);
  };
  return {
    post,
    close: async () => {
      await pool.close();
      await server.kill('SIGTERM');
    },
  };
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
        // Cold: a fresh container per job, as before reuse.
        config: config({ warmContainers: warm, jobsPerContainer: warm ? 100 : 1 }),
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

    // Through the HTTP API, back to back: 1 client, then CLIENTS clients (one user).
    process.stderr.write('docker bench: jobs through the API…\n');
    const api = await apiServer(host, path.join(data, 'server'));
    closers.push(() => api.close());
    const dockerRunCmd = () => cli(host, ['run', '--rm', '--network', 'none', BUSYBOX_IMAGE, 'sh', '-c', COMMAND]);
    const floorBox = (await cli(host, ['run', '-d', '--rm', '--network', 'none', BUSYBOX_IMAGE, 'sleep', '3600'])).trim();
    closers.push(() => cli(host, ['rm', '-f', floorBox]));
    const dockerExec = () => cli(host, ['exec', floorBox, 'sh', '-c', COMMAND]);
    const api1 = {
      docker: await timed(API_N, () => api.post('dsh')),
      process: await timed(API_N, () => api.post('sh')),
      run: await timed(Math.min(API_N, COLD_N), dockerRunCmd),
      exec: await timed(Math.min(API_N, COLD_N), dockerExec),
    };
    await api.post('dsh');
    const apiMany = {
      docker: await clients(CLIENTS, PER_CLIENT, () => api.post('dsh')),
      process: await clients(CLIENTS, PER_CLIENT, () => api.post('sh')),
      run: await clients(CLIENTS, RUN_PER_CLIENT, dockerRunCmd),
      exec: await clients(CLIENTS, RUN_PER_CLIENT, dockerExec),
    };

    // A pause before each, so the process runner's pool of sandboxes is refilled too.
    const proc = await timed(N, () => runJob(processRunner, jobSpec()), () => sleep(200));
    const warmRunner = await dockerRunner(2);
    // One user's jobs one after another: each runs in the container the previous one left.
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
    const runP50 = percentile(api1.run, 50);
    const manyRunP50 = percentile(apiMany.run.ms, 50);
    const apiRow = (name: string, one: number[], many: { ms: number[]; perSecond: number }, vsOne: number, vsMany: number) => [
      name,
      fmt(percentile(one, 50), 1),
      fmt(percentile(one, 99), 1),
      `${fmt(vsOne / percentile(one, 50), 1)}×`,
      fmt(percentile(many.ms, 50), 1),
      fmt(percentile(many.ms, 99), 1),
      fmt(many.perSecond, 1),
      `${fmt(vsMany / percentile(many.ms, 50), 1)}×`,
    ];
    return [
      {
        title: 'Docker driver: jobs through the HTTP API, back to back',
        markdown: [
          `\`${COMMAND}\` jobs posted back to back by one user (\`POST /api/v1/jobs\`, waiting for the result), ms; ` +
            `1 client: ${API_N} jobs; ${CLIENTS} clients: ${PER_CLIENT} jobs each (\`docker run\`/\`exec\`: ${RUN_PER_CLIENT} each). ` +
            `Server defaults (job pool = one per core, \`warmContainers\` 2); Docker ${engineInfo.version}.`,
          '',
          table(['how', '1 client p50', 'p99', '× faster than `docker run --rm`', `${CLIENTS} clients p50`, 'p99', 'jobs/s', '× faster than `docker run --rm`'], [
            apiRow('corral job on docker (container reused for the user)', api1.docker, apiMany.docker, runP50, manyRunP50),
            apiRow('corral job on the process driver (bwrap)', api1.process, apiMany.process, runP50, manyRunP50),
            apiRow('`docker exec` into a running container (CLI): the floor of a fresh process per job', api1.exec, apiMany.exec, runP50, manyRunP50),
            apiRow('`docker run --rm --network none` (CLI)', api1.run, apiMany.run, runP50, manyRunP50),
          ]),
          '',
          `Target: docker jobs through the API ≥ 10× faster than \`docker run --rm\` with 1 client ` +
            `(${fmt(runP50 / percentile(api1.docker, 50), 1)}×) and with ${CLIENTS} (${fmt(manyRunP50 / percentile(apiMany.docker.ms, 50), 1)}×). ` +
            'A user\'s job runs in a container kept for that user (reset between jobs, docs/docker.md); ' +
            `with ${CLIENTS} clients most time is the queue: the server runs one job per core.`,
        ].join('\n'),
      },
      {
        title: 'Docker driver: job latency',
        markdown: [
          `One job (\`${COMMAND}\` in a busybox image, no network, files written in, output collected), ` +
            `started and awaited by the job runner, ms; Docker ${version}. ${N} warm runs, ${COLD_N} cold ones.`,
          '',
          table(['how', 'p50', 'p99', '× process'], [
            row('process driver (bwrap, warm sandboxes)', proc, base),
            row('docker driver, container reused for the user', warm, base),
            row('docker driver, cold (create + start per job)', cold, base),
            row('`docker run --rm --network none` (CLI)', dockerRun, base),
          ]),
          '',
          `Targets: a reused container within 3× the process driver (${fmt(percentile(warm, 50) / base, 1)}×) and ≥5× faster than ` +
            `\`docker run --rm\` (${fmt(percentile(dockerRun, 50) / percentile(warm, 50), 1)}×). The runner alone: no HTTP, no store.`,
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
