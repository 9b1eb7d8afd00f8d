/**
 * Jobs: latency of one job through the HTTP API next to bare exec and bwrap run directly,
 * interleaved in one run (and `docker run --rm` when an engine answers); throughput with many
 * concurrent clients and where each job's CPU goes (server, spawn host, sandbox), with reused
 * sandboxes and with single-use ones (jobsPerSandbox: 1, the behaviour before reuse) side by
 * side; a batch of cases against as many separate jobs; the server's memory over 10,000 jobs.
 * Servers run as their own processes (as in production), so client and server do not share
 * an event loop.
 */
import { execFile, spawn } from 'node:child_process';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Pool } from 'undici';
import WebSocket from 'ws';
import type { JobSpec } from '../src/core/jobs/runner.js';
import { SANDBOX_PATH } from '../src/core/jobs/runtimes.js';
import { EtcView } from '../src/drivers/process/etc-view.js';
import { ProcessJobRunner } from '../src/drivers/process/job-runner.js';
import { sandboxArgv } from '../src/drivers/process/sandbox.js';
import { createToken, login, spawnServer, tempDir, ADMIN_PASSWORD, type ChildServer } from '../test/helpers/server.js';
import { fmt, percentile, table, type Benchmark } from './lib.js';

const N = Number(process.env.BENCH_JOBS_N ?? 300);
const CLIENTS = Number(process.env.BENCH_JOBS_CLIENTS ?? 16);
const THROUGHPUT_SECONDS = Number(process.env.BENCH_JOBS_SECONDS ?? 10);
const RSS_JOBS = Number(process.env.BENCH_JOBS_RSS ?? 10_000);
const CASES = Number(process.env.BENCH_JOBS_CASES ?? 100);

const PY = 'print("hello, world")\n';
const SUM_C = '#include <stdio.h>\nint main(void){long a,b; if(scanf("%ld %ld",&a,&b)!=2) return 1; printf("%ld\\n",a+b); return 0;}\n';
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

interface Stat {
  pid: number;
  ppid: number;
  /** utime + stime and cutime + cstime, in ms (100 ticks per second). */
  own: number;
  reaped: number;
}

async function procStat(pid: number): Promise<Stat | undefined> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (!text) return undefined;
  const f = text.slice(text.lastIndexOf(') ') + 2).split(' ');
  // f[0] is field 3: ppid is field 4, utime..cstime fields 14–17.
  return { pid, ppid: Number(f[1]), own: (Number(f[11]) + Number(f[12])) * 10, reaped: (Number(f[13]) + Number(f[14])) * 10 };
}

/** Every process below `root` (itself included), with its CPU. */
async function tree(root: number): Promise<Map<number, Stat>> {
  const all: Stat[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = await procStat(Number(name));
    if (st) all.push(st);
  }
  const byParent = new Map<number, Stat[]>();
  for (const st of all) byParent.set(st.ppid, [...(byParent.get(st.ppid) ?? []), st]);
  const out = new Map<number, Stat>();
  const walk = (pid: number) => {
    for (const st of byParent.get(pid) ?? []) {
      out.set(st.pid, st);
      walk(st.pid);
    }
  };
  const self = all.find((s) => s.pid === root);
  if (self) out.set(root, self);
  walk(root);
  return out;
}

/**
 * CPU ms used between two snapshots of the server's tree, split three ways: the server
 * process, its spawn host (the node child that forks every sandbox), and everything else
 * (bwrap, the sandboxes' init, the jobs, reaped or alive). A process alive in both counts its
 * difference, a new one all of it; what was reaped adds to its reaper's `reaped`.
 */
function cpuSplit(before: Map<number, Stat>, after: Map<number, Stat>, server: number): { server: number; spawn: number; sandbox: number } {
  const split = { server: 0, spawn: 0, sandbox: 0 };
  for (const [pid, a] of after) {
    const b = before.get(pid);
    const used = a.own - (b?.own ?? 0);
    const reaped = a.reaped - (b?.reaped ?? 0);
    if (pid === server) {
      split.server += used;
      split.spawn += reaped; // the spawn host, if it was ever replaced
    } else if (a.ppid === server) {
      split.spawn += used;
      split.sandbox += reaped;
    } else split.sandbox += used + reaped;
  }
  return split;
}

async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) * 1024;
}

/**
 * The server's heap after a full GC, through its inspector (started with
 * NODE_OPTIONS=--inspect=127.0.0.1:0, on loopback): garbage not yet collected and a leak
 * look alike in RSS; the heap after a forced collection holds only what is still referenced.
 */
async function heapAfterGc(inspectorUrl: string): Promise<number> {
  const ws = new WebSocket(inspectorUrl);
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  let id = 0;
  const call = (method: string) =>
    new Promise<Record<string, number>>((resolve) => {
      const me = ++id;
      const onMessage = (data: WebSocket.RawData) => {
        const msg = JSON.parse(data.toString()) as { id?: number; result: Record<string, number> };
        if (msg.id !== me) return;
        ws.off('message', onMessage);
        resolve(msg.result);
      };
      ws.on('message', onMessage);
      ws.send(JSON.stringify({ id: me, method }));
    });
  await call('HeapProfiler.collectGarbage');
  const { usedSize } = await call('Runtime.getHeapUsage');
  ws.close();
  return usedSize!;
}

const row = (name: string, ms: number[]) => [name, fmt(percentile(ms, 50), 2), fmt(percentile(ms, 99), 2)];

interface Server {
  server: ChildServer;
  data: string;
  post(body: unknown): Promise<{ id: string; status: string; stdout: string; cases?: { status: string }[] }>;
  /** GET of a finished job: the HTTP round trip with auth and a SQLite read, no sandbox. */
  get(id: string): Promise<void>;
  close(): Promise<void>;
}

async function startServer(env: NodeJS.ProcessEnv): Promise<Server> {
  const data = await tempDir('corral-bench-jobs-');
  const server = await spawnServer(data, { ...SERVER_ENV, ...env }).catch(async (e: unknown) => {
    await rm(data, { recursive: true, force: true });
    throw e;
  });
  const pool = new Pool(server.url, { connections: CLIENTS, pipelining: 1 });
  const token = await createToken(server.url, await login(server.url, 'admin', ADMIN_PASSWORD), 'bench', ['jobs:write']);
  return {
    server,
    data,
    async post(body) {
      const res = await pool.request({
        path: '/api/v1/jobs',
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`job failed: ${res.statusCode} ${text}`);
      const job = JSON.parse(text) as { id: string; status: string; stdout: string };
      if (job.status !== 'ok') throw new Error(`job ${job.status}: ${text.slice(0, 300)}`);
      return job;
    },
    async get(id) {
      const res = await pool.request({ path: `/api/v1/jobs/${id}`, method: 'GET', headers: { authorization: `Bearer ${token}` } });
      await res.body.text();
      if (res.statusCode !== 200) throw new Error(`GET job: ${res.statusCode}`);
    },
    async close() {
      await pool.close();
      await server.kill('SIGTERM');
      await rm(data, { recursive: true, force: true });
    },
  };
}

/** `clients` clients posting `body` back to back for `seconds`: jobs/s and the CPU split per job. */
async function throughput(s: Server, body: unknown, clients: number, seconds: number) {
  // Warm up (sandboxes started, made theirs), then measure.
  await Promise.all(Array.from({ length: clients }, () => s.post(body)));
  const pid = s.server.child.pid!;
  let done = 0;
  const before = await tree(pid);
  const until = Date.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() < until) {
        await s.post(body);
        done++;
      }
    }),
  );
  const perSecond = done / ((performance.now() - started) / 1000);
  const split = cpuSplit(before, await tree(pid), pid);
  const per = (ms: number) => ms / done;
  return { done, perSecond, server: per(split.server), spawn: per(split.spawn), sandbox: per(split.sandbox) };
}

/**
 * The sandbox floor: corral's job runner in this process, no HTTP, no SQLite, no service —
 * the pool, a reused sandbox, init forking the step, the step cgroup, the FIFOs.
 */
async function inProcessRunner(root: string) {
  const limits = { memoryBytes: 256 << 20, pids: 128, cpus: 1, outputBytes: 1 << 20, fileSizeBytes: 64 << 20, openFiles: 256 };
  const runner = await ProcessJobRunner.create({
    root,
    hide: [],
    warm: 2,
    defaults: { network: false, readOnlyPaths: [], limits: { memoryBytes: limits.memoryBytes, pids: limits.pids, cpus: limits.cpus }, rlimits: { fileSizeBytes: limits.fileSizeBytes, openFiles: limits.openFiles, coreBytes: 0 } },
  });
  if ('unavailable' in runner) throw new Error(runner.unavailable);
  return {
    async run(command: string, files: { path: string; content: string }[] = []) {
      const spec: JobSpec = {
        id: 'bench',
        owner: 'bench',
        runtime: 'bench',
        command,
        files: files.map((f) => ({ path: f.path, data: Buffer.from(f.content) })),
        keepStdinOpen: false,
        timeoutMs: 30_000,
        limits,
        network: false,
        readOnlyPaths: [],
        maxOutputFileBytes: 1 << 20,
      };
      const result = await (await runner.run(spec, () => {})).done;
      if (result.status !== 'ok') throw new Error(`in-process job ${result.status}: ${result.stderr.toString()}`);
    },
    close: () => runner.close(),
  };
}

const bench: Benchmark = async () => {
  const work = await tempDir('corral-bench-work-');
  const etcData = await tempDir('corral-bench-etc-');
  await writeFile(path.join(work, 'main.py'), PY);
  const etc = await new EtcView(path.join(etcData, 'etc')).ready();
  // Its inspector, on loopback, lets the memory section force a GC and read the heap.
  const reused = await startServer({ NODE_OPTIONS: '--inspect=127.0.0.1:0' });
  const runner = await inProcessRunner(path.join(etcData, 'runner'));
  // The same server with sandboxes used once each: how jobs ran before sandboxes were reused.
  const single = await startServer({ CORRAL_JOBS__JOBS_PER_SANDBOX: '1' });
  try {
    const shJob = { runtime: 'sh', entry: "sh -c 'echo hi'" };
    const pyJob = { runtime: 'python', files: { 'main.py': PY } };

    const docker = await sh('docker info --format "{{.ServerVersion}}"');
    const dockerImage = docker.ok ? (await sh('docker images --format "{{.Repository}}:{{.Tag}}" | head -n1')).out : '';

    // Latency: the alternatives interleaved run by run, so a busy moment hits them all alike.
    const latency: (string | number)[][] = [];
    const finished = (await reused.post(shJob)).id;
    for (const [label, bare, job, dockerCmd, commandLine] of [
      ["sh -c 'echo hi'", ['sh', '-c', 'echo hi'], shJob, ['sh', '-c', 'echo hi'], "sh -c 'echo hi'"],
      ['python hello world', ['python3', 'main.py'], pyJob, ['python3', '-c', PY], 'python3 main.py'],
    ] as const) {
      const files = 'files' in job ? Object.entries(job.files).map(([p, content]) => ({ path: p, content })) : [];
      const kinds: [string, () => Promise<unknown>][] = [
        ['bare exec', () => exec([...bare], work)],
        ['bwrap directly', () => exec(bwrapArgv([...bare], work, etc))],
        ['corral job (HTTP API), reused sandbox', () => reused.post(job)],
        ['corral job (HTTP API), single-use sandbox', () => single.post(job)],
        ['floor: corral\'s job runner in-process (reused sandbox; no HTTP, no SQLite)', () => runner.run(commandLine, files)],
        ...(label.startsWith('sh')
          ? [['floor: HTTP GET of a finished job (auth, SQLite read; no sandbox)', () => reused.get(finished)] as [string, () => Promise<unknown>]]
          : []),
        ...(dockerImage ? [['docker run --rm', () => exec(['docker', 'run', '--rm', '--network', 'none', dockerImage, ...dockerCmd])] as [string, () => Promise<unknown>]] : []),
      ];
      const samples = kinds.map(() => [] as number[]);
      for (let i = 0; i < 3; i++) for (const [, run] of kinds) await run();
      for (let i = 0; i < N; i++) {
        for (const [k, [name, run]] of kinds.entries()) {
          if (name === 'docker run --rm' && i >= 50) continue;
          const t = performance.now();
          await run();
          samples[k]!.push(performance.now() - t);
        }
      }
      kinds.forEach(([name], k) => latency.push(row(`${label}: ${name}`, samples[k]!)));
    }

    // Throughput and where the CPU goes, reused vs single-use, one after the other.
    const tput: (string | number)[][] = [];
    for (const [label, s] of [['reused sandboxes', reused], ['single-use sandboxes', single]] as const) {
      const t = await throughput(s, shJob, CLIENTS, THROUGHPUT_SECONDS);
      const total = t.server + t.spawn + t.sandbox;
      tput.push([label, CLIENTS, t.done, fmt(t.perSecond, 0), fmt(t.server, 2), fmt(t.spawn, 2), fmt(t.sandbox, 2), fmt(total, 2), fmt(2000 / total, 0)]);
    }

    // A batch of CASES cases of a C program against CASES separate jobs of it (one client).
    const cases = Array.from({ length: CASES }, (_, i) => ({ stdin: `${i} ${i}`, expected: `${2 * i}\n` }));
    const cJob = { runtime: 'c', files: { 'main.c': SUM_C } };
    await reused.post({ ...cJob, stdin: '1 1' });
    let t = performance.now();
    const batch = await reused.post({ ...cJob, cases });
    const batchMs = performance.now() - t;
    if (batch.cases?.length !== CASES) throw new Error('the batch did not run every case');
    t = performance.now();
    for (const c of cases) await reused.post({ ...cJob, stdin: c.stdin });
    const separateMs = performance.now() - t;
    t = performance.now();
    const shBatch = await reused.post({ runtime: 'sh', entry: 'read a b; echo $((a + b))', cases });
    const shBatchMs = performance.now() - t;
    if (shBatch.cases?.length !== CASES) throw new Error('the sh batch did not run every case');

    // Memory: the server's RSS and its heap after a forced GC while it runs RSS_JOBS jobs (reused sandboxes).
    const inspector = /Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[\w-]+)/.exec(reused.server.output())?.[1];
    if (!inspector) throw new Error('the server did not start its inspector');
    const rss: (string | number)[][] = [];
    const pid = reused.server.child.pid!;
    const memory = async (jobs: number) => {
      const heap = await heapAfterGc(inspector);
      rss.push([String(jobs), fmt((await rssOf(pid)) / 2 ** 20), fmt(heap / 2 ** 20)]);
    };
    await memory(0);
    let issued = 0;
    let completed = 0;
    let nextSample = RSS_JOBS / 4;
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (issued < RSS_JOBS) {
          issued++;
          await reused.post(shJob);
          if (++completed >= nextSample) {
            nextSample += RSS_JOBS / 4;
            await memory(completed);
          }
        }
      }),
    );

    const notes = [
      `${N} runs of each, interleaved run by run (after 3 warm-up rounds), one client, keep-alive HTTP.`,
      'The job rows include the HTTP request, auth, validation, the SQLite insert and result, and the sandbox:',
      'bwrap namespaces (user, pid, ipc, uts, net), cgroups, the step run by the sandbox\'s init.',
      '"reused": the sandbox served this owner\'s job before and was reset since;',
      '"single-use": jobsPerSandbox: 1, a pre-started sandbox per job, destroyed after it (as before reuse).',
      '"bwrap directly" starts that same sandbox (mounts, /etc copy, namespaces; no cgroup) for each run.',
      dockerImage
        ? `docker: \`docker run --rm --network none ${dockerImage}\` (${docker.out}), 50 runs.`
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
            ['sandboxes', 'clients', 'jobs', 'jobs/s', 'CPU ms per job: server', 'spawn host', 'sandbox', 'total', 'jobs/s the CPU allows on 2 free cores'],
            tput,
          )}\n\n` +
          `\`sh -c 'echo hi'\` jobs through the HTTP API, ${CLIENTS} clients posting back to back (wait=true) for ${THROUGHPUT_SECONDS} s, ` +
          'pool = one job per core, the bench client on the same two cores. CPU per job from /proc: the server process, its spawn ' +
          'host (forks sandboxes and helpers), and the sandboxes (bwrap, init, the jobs and everything they ran, reaped or alive).',
      },
      {
        title: 'Jobs: a batch against separate jobs',
        markdown:
          `${table(
            ['what', 'ms', 'per case (ms)', 'speed-up'],
            [
              [`${CASES} separate C jobs (each compiles)`, fmt(separateMs, 0), fmt(separateMs / CASES, 2), '1×'],
              [`one batch of ${CASES} cases (compiled once)`, fmt(batchMs, 0), fmt(batchMs / CASES, 2), `${fmt(separateMs / batchMs, 1)}×`],
              [`one \`sh\` batch of ${CASES} cases`, fmt(shBatchMs, 0), fmt(shBatchMs / CASES, 2), ''],
            ],
          )}\n\n` +
          `A C program summing two numbers, ${CASES} inputs with expected outputs, one client, sequential. Target: the batch at least 10× faster.`,
      },
      {
        title: 'Jobs: server memory over many jobs',
        markdown:
          `${table(['jobs done', 'server RSS (MiB)', 'heap after a forced GC (MiB)'], rss)}\n\n${RSS_JOBS} \`sh\` jobs from ${CLIENTS} clients (reused sandboxes). ` +
          'The heap is read through the server\'s inspector (loopback) right after a full collection: what is still referenced, ' +
          'jobs in flight included. RSS also holds freed memory V8 and the allocator have not returned.',
      },
    ];
  } finally {
    await runner.close();
    await reused.close();
    await single.close();
    await rm(work, { recursive: true, force: true });
    await rm(etcData, { recursive: true, force: true });
  }
};

export default bench;
