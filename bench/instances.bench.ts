/**
 * Instances: create → running latency for 1 and for 100 instances next to spawning the same
 * command bare and under bwrap directly; the server's RSS with many running `sleep`
 * instances; log streaming to an attached WebSocket next to the same child writing to
 * /dev/null. The server runs as its own process (`npm run build` first), so client and
 * server do not share an event loop.
 */
import { spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import WebSocket from 'ws';
import { sandboxArgv } from '../src/drivers/process/sandbox.js';
import { api, ADMIN_PASSWORD, createToken, login, spawnServer, tempDir, type ChildServer } from '../test/helpers/server.js';
import { fmt, percentile, table, type Benchmark } from './lib.js';

const N_SEQ = Number(process.env.BENCH_INSTANCES_N ?? 30);
const N_PAR = Number(process.env.BENCH_INSTANCES_PAR ?? 100);
const N_RSS = Number(process.env.BENCH_INSTANCES_RSS ?? 500);
const STREAM_BYTES = Number(process.env.BENCH_INSTANCES_STREAM_MB ?? 200) * 1e6;
const PATH = '/usr/local/bin:/usr/bin:/bin';
const CMD = ['sleep', '100000'];

/** Spawns argv and resolves once the process has started (the 'spawn' event), with the child. */
function spawnTimed(argv: string[]): Promise<{ ms: number; kill: () => void }> {
  const t = performance.now();
  const child = spawn(argv[0]!, argv.slice(1), { env: { PATH }, stdio: 'ignore', detached: true });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('spawn', () => resolve({ ms: performance.now() - t, kill: () => process.kill(-child.pid!, 'SIGKILL') }));
  });
}

const bwrap = (command: string[], dir: string) =>
  sandboxArgv({ bwrap: 'bwrap', command, env: { PATH }, cwd: '/data', writable: [{ source: dir, target: '/data' }], readOnly: [], network: true });

async function startServer(): Promise<{ server: ChildServer; token: string; data: string }> {
  const data = await tempDir('corral-bench-inst-');
  const server = await spawnServer(data, { ...(process.env.BENCH_PROF && { NODE_OPTIONS: '--cpu-prof --cpu-prof-dir=/tmp/prof' }), CORRAL_INSTANCES__LOGS__CLIENT_BUFFER_BYTES: String(8 * 2 ** 20),
    // 500 instances of one user: no per-user quota (0 = none) may stop the measurement.
    CORRAL_QUOTAS__INSTANCES: '0',
    CORRAL_QUOTAS__RUNNING_INSTANCES: '0',
    CORRAL_QUOTAS__MEMORY_BYTES: '0',
  });
  const token = await createToken(server.url, await login(server.url, 'admin', ADMIN_PASSWORD), 'bench');
  return { server, token, data };
}

async function stopServer(s: { server: ChildServer; data: string }): Promise<void> {
  await s.server.kill('SIGTERM');
  await rm(s.data, { recursive: true, force: true });
}

/** POST → 201 with state running: the sandbox has been spawned and the record written. */
async function createTimed(s: { server: ChildServer; token: string }, name: string, command = CMD): Promise<number> {
  const t = performance.now();
  const res = await api(s.server, s.token, 'POST', '/api/v1/instances', { name, command, restart: 'never' });
  if (res.status !== 201 || res.body.state !== 'running') throw new Error(`create ${name}: ${res.status} ${JSON.stringify(res.body)}`);
  return performance.now() - t;
}

async function inParallel<T>(n: number, width: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await fn(i);
      }
    }),
  );
  return out;
}

async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

async function latency(): Promise<string> {
  const dir = await tempDir('corral-bench-bwrap-');
  const rows: (string | number)[][] = [];
  const row = (what: string, ms: number[]) => rows.push([what, ms.length, fmt(percentile(ms, 50)), fmt(percentile(ms, 90)), fmt(percentile(ms, 99))]);

  // One at a time.
  const bare: number[] = [];
  const sandboxed: number[] = [];
  for (let i = 0; i < N_SEQ; i++) {
    const a = await spawnTimed(CMD);
    bare.push(a.ms);
    a.kill();
    const b = await spawnTimed(bwrap(CMD, dir));
    sandboxed.push(b.ms);
    b.kill();
  }
  const s = await startServer();
  const corral: number[] = [];
  for (let i = 0; i < 3; i++) await createTimed(s, `warm-${i}`);
  for (let i = 0; i < N_SEQ; i++) corral.push(await createTimed(s, `seq-${i}`));
  row('bare spawn, one at a time', bare);
  row('bwrap spawn, one at a time', sandboxed);
  row('corral create → running, one at a time', corral);

  // N_PAR at once (8 clients in flight).
  const parBare = await inParallel(N_PAR, 8, async () => spawnTimed(CMD));
  parBare.forEach((p) => p.kill());
  const parBwrap = await inParallel(N_PAR, 8, async () => spawnTimed(bwrap(CMD, dir)));
  parBwrap.forEach((p) => p.kill());
  const t = performance.now();
  const parCorral = await inParallel(N_PAR, 8, (i) => createTimed(s, `par-${i}`));
  const allMs = performance.now() - t;
  row(`bare spawn, ${N_PAR} (8 at a time)`, parBare.map((p) => p.ms));
  row(`bwrap spawn, ${N_PAR} (8 at a time)`, parBwrap.map((p) => p.ms));
  row(`corral create → running, ${N_PAR} (8 at a time)`, parCorral);
  await stopServer(s);
  await rm(dir, { recursive: true, force: true });

  const gap = percentile(corral, 50) - percentile(sandboxed, 50);
  return [
    table(['what', 'n', 'p50 ms', 'p90 ms', 'p99 ms'], rows),
    '',
    `"running" is what \`POST /api/v1/instances\` answers: the spec and desired state written, ports chosen, a cgroup made, ` +
      `the bwrap sandbox spawned and the observed state written. All ${N_PAR} parallel instances ran after ${fmt(allMs, 0)} ms. ` +
      `One at a time, corral's p50 is ${fmt(gap)} ms above bare bwrap (target: within 20 ms).`,
  ].join('\n');
}

async function memory(): Promise<string> {
  const s = await startServer();
  const pid = s.server.child.pid!;
  await new Promise((r) => setTimeout(r, 500));
  const idle = await rssMb(pid);
  const t = performance.now();
  await inParallel(N_RSS, 8, (i) => createTimed(s, `rss-${i}`));
  const createdIn = performance.now() - t;
  await new Promise((r) => setTimeout(r, 2000));
  const loaded = await rssMb(pid);
  const list = await api(s.server, s.token, 'GET', '/api/v1/instances');
  const running = (list.body.instances as { state: string }[]).filter((i) => i.state === 'running').length;
  const t2 = performance.now();
  await stopServer(s);
  const stopMs = performance.now() - t2;
  return [
    table(
      ['what', 'RSS MB'],
      [
        ['corral serve, no instances', fmt(idle)],
        [`corral serve, ${running} running \`sleep\` instances`, fmt(loaded)],
      ],
    ),
    '',
    `${N_RSS} instances created in ${fmt(createdIn / 1000)} s (8 clients); SIGTERM stopped them all and the server ` +
      `exited in ${fmt(stopMs / 1000)} s. Target: ≤ 150 MB with 500 instances.`,
  ].join('\n');
}

/** Seconds for `sh -c CMD` to finish with its stdout to /dev/null. */
function devNullSeconds(cmd: string): Promise<number> {
  const t = performance.now();
  const child = spawn('sh', ['-c', `${cmd} > /dev/null`], { stdio: 'ignore' });
  return new Promise((resolve) => child.once('exit', () => resolve((performance.now() - t) / 1000)));
}

async function streaming(): Promise<string> {
  const line = 'x'.repeat(999);
  const writer = `yes ${line} | head -c ${STREAM_BYTES}`;
  const nullS = await devNullSeconds(writer);
  const s = await startServer();
  // The child waits a moment so the client is attached before the first byte.
  const res = await api(s.server, s.token, 'POST', '/api/v1/instances', { name: 'firehose', shell: `sleep 1; ${writer}; sleep 1000` });
  const ws = new WebSocket(`${s.server.url.replace('http', 'ws')}/api/v1/instances/${res.body.id}/attach`, {
    headers: { authorization: `Bearer ${s.token}` },
  });
  let bytes = 0;
  let first = 0;
  let last = 0;
  let dropped = 0;
  await new Promise<void>((resolve) => {
    let idle: NodeJS.Timeout | undefined;
    ws.on('message', (data: Buffer) => {
      const now = performance.now();
      first ||= now;
      last = now;
      const text = data.toString();
      const m = /^\[corral: (\d+) lines dropped/.exec(text);
      if (m) dropped += Number(m[1]);
      else bytes += data.length + 1;
      clearTimeout(idle);
      // The child writes STREAM_BYTES then sleeps: a second of silence means it is done.
      idle = setTimeout(resolve, 1000);
      if (bytes >= STREAM_BYTES) resolve();
    });
  });
  ws.close();
  await stopServer(s);
  const wsS = (last - first) / 1000;
  const mbps = (b: number, sec: number) => fmt(b / 1e6 / sec);
  return [
    table(
      ['what', 'MB', 'seconds', 'MB/s'],
      [
        ['child → /dev/null', fmt(STREAM_BYTES / 1e6, 0), fmt(nullS, 2), mbps(STREAM_BYTES, nullS)],
        ['child → corral → attached WebSocket client', fmt(bytes / 1e6, 0), fmt(wsS, 2), mbps(bytes, wsS)],
      ],
    ),
    '',
    `1000-byte lines (\`yes\`), one WebSocket frame per line; each line also goes to the rotating log file and the ` +
      `in-memory tail. Lines dropped for the client (it fell more than 8 MiB behind): ${dropped}. Target: ≥ 50 MB/s.`,
  ].join('\n');
}

const ONLY = process.env.BENCH_INSTANCES_ONLY;

const bench: Benchmark = async () => [
  ...(!ONLY || ONLY === 'latency' ? [{ title: 'Instances: create → running', markdown: await latency() }] : []),
  ...(!ONLY || ONLY === 'memory' ? [{ title: 'Instances: supervisor memory', markdown: await memory() }] : []),
  ...(!ONLY || ONLY === 'streaming' ? [{ title: 'Instances: log streaming to an attached client', markdown: await streaming() }] : []),
];
export default bench;
