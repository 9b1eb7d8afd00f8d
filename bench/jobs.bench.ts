/**
 * Jobs: latency of one job through the HTTP API next to bare exec, bwrap run directly and
 * `docker run --rm` (when an engine answers); throughput with many concurrent clients; the
 * server's memory over 10,000 jobs. The server runs as its own process (as in production),
 * so client and server do not share an event loop.
 */
import { execFile, spawn } from 'node:child_process';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Pool } from 'undici';
import { SANDBOX_PATH } from '../src/core/jobs/runtimes.js';
import { EtcView } from '../src/drivers/process/etc-view.js';
import { sandboxArgv } from '../src/drivers/process/sandbox.js';
import { createToken, login, spawnServer, tempDir, ADMIN_PASSWORD } from '../test/helpers/server.js';
import { fmt, percentile, table, time, type Benchmark } from './lib.js';

const N = Number(process.env.BENCH_JOBS_N ?? 300);
const CLIENTS = Number(process.env.BENCH_JOBS_CLIENTS ?? 16);
const THROUGHPUT_SECONDS = Number(process.env.BENCH_JOBS_SECONDS ?? 10);
const RSS_JOBS = Number(process.env.BENCH_JOBS_RSS ?? 10_000);

const PY = 'print("hello, world")\n';
/** Server settings under test, e.g. BENCH_JOBS_POOL=8 BENCH_JOBS_WARM=16. */
const SERVER_ENV: NodeJS.ProcessEnv = {
  ...(process.env.BENCH_JOBS_POOL && { CORRAL_JOBS__POOL_SIZE: process.env.BENCH_JOBS_POOL }),
  ...(process.env.BENCH_JOBS_WARM && { CORRAL_JOBS__WARM_SANDBOXES: process.env.BENCH_JOBS_WARM }),
};

/** Spawns argv and resolves when it has exited and its output is read. */
function exec(argv: string[], cwd?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    // The PATH jobs get, so bare exec runs the same binaries (not, say, a pyenv shim).
    const env = { ...process.env, PATH: SANDBOX_PATH };
    const child = spawn(argv[0]!, argv.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.resume();
    child.stderr.resume();
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${argv.join(' ')} exited ${code}`))));
  });
}

const sh = (cmd: string) =>
  new Promise<{ ok: boolean; out: string }>((resolve) =>
    execFile('/bin/sh', ['-c', cmd], { timeout: 10_000 }, (err, stdout) => resolve({ ok: !err, out: stdout.trim() })),
  );

/** The sandbox a job gets (same mounts, /etc copy and namespaces), started per run. */
function bwrapArgv(command: string[], workDir: string, etc: string | undefined): string[] {
  return sandboxArgv({
    bwrap: 'bwrap',
    command,
    env: { PATH: SANDBOX_PATH },
    cwd: '/work',
    writable: [{ source: workDir, target: '/work' }],
    readOnly: [],
    network: false,
    etc,
  });
}

/** CPU milliseconds a process and its reaped children (the sandboxes) have used. */
async function cpuMsOf(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  // utime, stime, cutime, cstime: fields 14–17, in clock ticks (100 per second).
  return [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0) * 10;
}

/**
 * CPU of the server and of its direct children: the spawn host forks the sandboxes, so their
 * CPU lands in the host's cutime once reaped (a few still-running warm sandboxes are not yet
 * counted; that error is a handful of sandboxes in thousands of jobs).
 */
async function treeCpuMs(pid: number): Promise<number> {
  const children: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    if (Number(stat.split(') ')[1]?.split(' ')[1]) === pid) children.push(Number(name));
  }
  const all = await Promise.all([pid, ...children].map((p) => cpuMsOf(p).catch(() => 0)));
  return all.reduce((a, b) => a + b, 0);
}

async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) * 1024;
}

const row = (name: string, ms: number[]) => [name, fmt(percentile(ms, 50), 2), fmt(percentile(ms, 99), 2)];

const bench: Benchmark = async () => {
  const data = await tempDir('corral-bench-jobs-');
  const work = await tempDir('corral-bench-work-');
  await writeFile(path.join(work, 'main.py'), PY);
  const etc = await new EtcView(path.join(data, 'bench-etc')).ready();
  const server = await spawnServer(data, SERVER_ENV).catch(async (e: unknown) => {
    await Promise.all([data, work].map((d) => rm(d, { recursive: true, force: true })));
    throw e;
  });
  const pool = new Pool(server.url, { connections: CLIENTS, pipelining: 1 });
  try {
    const token = await createToken(server.url, await login(server.url, 'admin', ADMIN_PASSWORD), 'bench', ['jobs:write']);
    const post = async (body: unknown) => {
      const res = await pool.request({
        path: '/api/v1/jobs',
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`job failed: ${res.statusCode} ${text}`);
      const job = JSON.parse(text) as { status: string; stdout: string };
      if (job.status !== 'ok') throw new Error(`job ${job.status}: ${text.slice(0, 300)}`);
      return job;
    };
    const shJob = { runtime: 'sh', entry: "sh -c 'echo hi'" };
    const pyJob = { runtime: 'python', files: { 'main.py': PY } };

    const docker = await sh('docker info --format "{{.ServerVersion}}"');
    const dockerImage = docker.ok ? (await sh('docker images --format "{{.Repository}}:{{.Tag}}" | head -n1')).out : '';

    const latency: (string | number)[][] = [];
    for (const [label, bare, job, dockerCmd] of [
      ["sh -c 'echo hi'", ['sh', '-c', 'echo hi'], shJob, ['sh', '-c', 'echo hi']],
      ['python hello world', ['python3', 'main.py'], pyJob, ['python3', '-c', PY]],
    ] as const) {
      latency.push(row(`${label}: bare exec`, await time(N, () => exec([...bare], work))));
      latency.push(row(`${label}: bwrap directly`, await time(N, () => exec(bwrapArgv([...bare], work, etc)))));
      latency.push(row(`${label}: corral job (HTTP API)`, await time(N, () => post(job))));
      if (dockerImage) {
        latency.push(row(`${label}: docker run --rm`, await time(Math.min(N, 50), () => exec(['docker', 'run', '--rm', '--network', 'none', dockerImage, ...dockerCmd]))));
      }
    }

    // Throughput: CLIENTS clients, each posting sh jobs back to back for a fixed time.
    let done = 0;
    const cpuBefore = await treeCpuMs(server.child.pid!);
    const until = Date.now() + THROUGHPUT_SECONDS * 1000;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (Date.now() < until) {
          await post(shJob);
          done++;
        }
      }),
    );
    const perSecond = done / ((performance.now() - started) / 1000);
    const cpuPerJob = ((await treeCpuMs(server.child.pid!)) - cpuBefore) / done;

    // Memory: the server's RSS while it runs RSS_JOBS jobs.
    const rss: (string | number)[][] = [];
    const pid = server.child.pid!;
    rss.push(['0', fmt((await rssOf(pid)) / 2 ** 20)]);
    let issued = 0;
    let completed = 0;
    let nextSample = RSS_JOBS / 4;
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (issued < RSS_JOBS) {
          issued++;
          await post(shJob);
          if (++completed >= nextSample) {
            nextSample += RSS_JOBS / 4;
            rss.push([String(completed), fmt((await rssOf(pid)) / 2 ** 20)]);
          }
        }
      }),
    );

    const notes = [
      `${N} sequential runs each (after 3 warm-up runs), one client, keep-alive HTTP; the job rows`,
      'include the HTTP request, auth, validation, the SQLite insert and result, and the sandbox:',
      'bwrap namespaces (user, pid, ipc, uts, net), a cgroup, and a pre-started waiting shell.',
      '"bwrap directly" starts that same sandbox (mounts, /etc copy, namespaces; no cgroup) for each run.',
      'Back to back, every job also needs a new sandbox started for it in the background, so on',
      'two cores these rows measure the CPU a job costs as much as its latency.',
      dockerImage
        ? `docker: \`docker run --rm --network none ${dockerImage}\` (${docker.out}).`
        : '`docker run --rm`: skipped — no Docker engine answered on this machine.',
    ].join(' ');
    return [
      {
        title: 'Jobs: latency of one job (ms)',
        markdown: `${table(['what', 'p50', 'p99'], latency)}\n\n${notes}`,
      },
      {
        title: 'Jobs: throughput',
        markdown:
          `${table(
            ['clients', 'jobs', 'seconds', 'jobs/s', 'server CPU per job (ms)', 'jobs/s the CPU allows on 2 free cores'],
            [[CLIENTS, done, THROUGHPUT_SECONDS, fmt(perSecond, 0), fmt(cpuPerJob, 2), fmt(2000 / cpuPerJob, 0)]],
          )}\n\n` +
          `\`sh -c 'echo hi'\` jobs through the HTTP API, ${CLIENTS} clients posting back to back (wait=true), ` +
          `pool = one job per core. Server CPU counts the server process, its spawn host and every sandbox they started.`,
      },
      {
        title: 'Jobs: server memory over many jobs',
        markdown: `${table(['jobs done', 'server RSS (MiB)'], rss)}\n\n${RSS_JOBS} \`sh\` jobs from ${CLIENTS} clients.`,
      },
    ];
  } finally {
    await pool.close();
    await server.kill('SIGTERM');
    await rm(data, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  }
};

export default bench;
