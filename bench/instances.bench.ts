/**
 * Instances: create → running latency for 1 and for 100 instances next to spawning the same
 * command bare and under bwrap directly; the server's RSS with many running `sleep`
 * instances; log streaming to an attached WebSocket next to the same child writing to
 * /dev/null. The server runs as its own process (`npm run build` first), so client and
 * server do not share an event loop.
 */
import { spawn } from 'node:child_process';
import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import WebSocket from 'ws';
import { sandboxArgv } from '../src/drivers/process/sandbox.js';
import { api, ADMIN_PASSWORD, spawnServer, tempDir, tokenFor, type ChildServer } from './child-server.js';
import { curlMs, fmt, percentile, table, type Benchmark } from './lib.js';

const N_SEQ = Number(process.env.BENCH_INSTANCES_N ?? 30);
const N_PAR = Number(process.env.BENCH_INSTANCES_PAR ?? 100);
const N_RSS = Number(process.env.BENCH_INSTANCES_RSS ?? 500);
const STREAM_BYTES = Number(process.env.BENCH_INSTANCES_STREAM_MB ?? 200) * 1e6;
/** Instance counts of the scale section, side by side in one run. */
const SCALE = (process.env.BENCH_INSTANCES_SCALE ?? '500,5000').split(',').map(Number);
/** Seconds the server is left alone with its instances to measure its periodic work. */
const IDLE_S = Number(process.env.BENCH_INSTANCES_IDLE_S ?? 30);
/** How long the restarted server gets to run every instance again before the bench moves on. */
const RESTART_WAIT_MS = 300_000;
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

/** Workloads die with the server (its SIGTERM stops them), or are the keeper's and outlive it. */
const KEEPER = (on: boolean) => ({ CORRAL_DRIVERS__PROCESS__KEEPER: String(on) });

/** Keeper off unless `env` says otherwise: a section's SIGTERM then leaves no workload behind. */
async function startServer(dataDir?: string, env: NodeJS.ProcessEnv = KEEPER(false)): Promise<{ server: ChildServer; token: string; data: string }> {
  const data = dataDir ?? (await tempDir('corral-bench-inst-'));
  const server = await spawnServer(data, { ...(process.env.BENCH_PROF && { NODE_OPTIONS: `--require ${process.env.BENCH_PROF}` }), CORRAL_INSTANCES__LOGS__CLIENT_BUFFER_BYTES: String(8 * 2 ** 20),
    ...env,
    // 5,000 instances of one user: quotas raised above that (still checked on every create).
    CORRAL_QUOTAS__INSTANCES: '10000',
    CORRAL_QUOTAS__RUNNING_INSTANCES: '10000',
    CORRAL_QUOTAS__MEMORY_BYTES: String(2 ** 43),
  });
  const token = await tokenFor(server.url, 'admin', ADMIN_PASSWORD, `bench-${Date.now()}`);
  return { server, token, data };
}

async function stopServer(s: { server: ChildServer; data: string }): Promise<void> {
  await s.server.kill('SIGTERM');
  await rm(s.data, { recursive: true, force: true });
}

/** POST → 201 with state running: the sandbox has been spawned and the record written. */
async function createTimed(s: { server: ChildServer; token: string }, name: string, command = CMD, extra: object = {}): Promise<number> {
  const t = performance.now();
  const res = await api(s.server, s.token, 'POST', '/api/v1/instances', { name, command, restart: 'never', ...extra });
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

/** Open descriptors of a process. */
async function fdCount(pid: number): Promise<number> {
  return (await readdir(`/proc/${pid}/fd`)).length;
}

/** CPU seconds (user + system) a process has used so far. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (100 Hz)
}

/** Pids of processes whose command line is exactly `argv`, and of those named `comm`. */
async function processes(match: (cmdline: string[], comm: string) => boolean): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const [cmd, comm] = await Promise.all([
      readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => ''),
      readFile(`/proc/${name}/comm`, 'utf8').catch(() => ''),
    ]);
    if (match(cmd.split('\0').filter(Boolean), comm.trim())) out.push(Number(name));
  }
  return out;
}

/** Polls the listing until `n` instances run; the ms it took (from `since`). */
async function untilRunning(s: { server: ChildServer; token: string }, n: number, since: number, timeoutMs: number): Promise<number> {
  for (;;) {
    const list = await api(s.server, s.token, 'GET', '/api/v1/instances');
    const running = (list.body.instances as { state: string }[] | undefined)?.filter((i) => i.state === 'running').length ?? 0;
    if (running >= n) return performance.now() - since;
    if (performance.now() - since > timeoutMs) throw new Error(`only ${running} of ${n} running after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

interface ScaleRow {
  n: number;
  idleRss: number;
  loadedRss: number;
  idleFds: number;
  loadedFds: number;
  createS: number;
  /** The server's CPU per create: what the rate would be on an idle machine, roughly (1000 / this per core). */
  createCpuMs: number;
  /** Creates per second in the first and the last tenth of the run: does a create slow down as instances add up? */
  firstRate: number;
  lastRate: number;
  /** The floor, with the n instances running: bwrap alone spawning FLOOR_N `sleep`s, 8 in flight, per second. */
  bwrapRate: number;
  listMs: number;
  listBytes: number;
  periodicPct: number;
  /** Keeper off: the server's SIGTERM stops every workload; until it exited, and what was left. */
  stopOffS: number;
  leftOff: number;
  /** The next server (keeper on) starts all again: until all run. */
  coldStartS: number;
  /** Keeper on: the server's SIGTERM lets go of them; until it exited, and how many ran on. */
  detachS: number;
  survivors: number;
  /** The next server re-adopts them: until all run. */
  adoptS: number;
  adoptHow: string;
  /** Keeper on, stop everything: SIGTERM of the keeper until no workload is left (and what was left). */
  keeperStopS: number;
  leftOn: number;
  load: string;
}

/** Spawns of bwrap alone per second (8 in flight): the machine's floor for a create. */
const FLOOR_N = Number(process.env.BENCH_INSTANCES_FLOOR_N ?? 300);
async function bwrapRate(): Promise<number> {
  const dir = await tempDir('corral-bench-floor-');
  const t = performance.now();
  const spawned = await inParallel(FLOOR_N, 8, async () => spawnTimed(bwrap(CMD, dir)));
  const rate = FLOOR_N / ((performance.now() - t) / 1000);
  spawned.forEach((p) => p.kill());
  await rm(dir, { recursive: true, force: true });
  return rate;
}

const loadAverage = async () => (await readFile('/proc/loadavg', 'utf8')).split(' ')[0]!;

/** Polls until no process runs `cmd` (or `timeoutMs` passed); the ms it took and how many were left. */
async function untilNone(cmd: string[], timeoutMs: number): Promise<{ ms: number; left: number }> {
  const t = performance.now();
  for (;;) {
    const left = (await processes((c) => c.join(' ') === cmd.join(' '))).length;
    if (!left || performance.now() - t > timeoutMs) return { ms: performance.now() - t, left };
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * N port-less `sleep` instances of one user, created by 8 clients, then everything a server
 * does with them, with its workloads dying with it (keeper off) and outliving it (keeper on).
 */
async function scaleOnce(n: number): Promise<ScaleRow> {
  const cmd = ['sleep', String(200_000 + n)]; // this run's own: leftovers are counted by it
  const load = await loadAverage();
  let s = await startServer(undefined, KEEPER(false));
  let pid = s.server.child.pid!;
  await new Promise((r) => setTimeout(r, 500));
  const idleRss = await rssMb(pid);
  const idleFds = await fdCount(pid);
  const done: number[] = [];
  const cpuBefore = await cpuSeconds(pid);
  const t = performance.now();
  await inParallel(n, 8, async (i) => {
    await createTimed(s, `s-${i}`, cmd);
    done.push(performance.now() - t);
  });
  const createS = (performance.now() - t) / 1000;
  const createCpuMs = (((await cpuSeconds(pid)) - cpuBefore) * 1000) / n;
  const tenth = Math.max(1, Math.floor(n / 10));
  const firstRate = tenth / (done[tenth - 1]! / 1000);
  const lastRate = tenth / ((done[n - 1]! - done[n - 1 - tenth]!) / 1000);
  const floor = await bwrapRate();
  await new Promise((r) => setTimeout(r, 2000));
  const loadedRss = await rssMb(pid);
  const loadedFds = await fdCount(pid);
  const listMs: number[] = [];
  let listBytes = 0;
  const listed = await (await fetch(`${s.server.url}/api/v1/instances`, { headers: { authorization: `Bearer ${s.token}` } })).text();
  listBytes = listed.length;
  if (JSON.parse(listed).instances.length !== n) throw new Error(`the listing has ${JSON.parse(listed).instances.length} of ${n}`);
  // Timed by curl: Node's fetch took longer to take in 2.3 MB than the server to send it.
  for (let i = 0; i < 7; i++) listMs.push(await curlMs(`${s.server.url}/api/v1/instances`, { authorization: `Bearer ${s.token}` }));
  // The periodic work (stats samples, metering ticks, reconcile, disk checks) with nobody asking.
  const cpu0 = await cpuSeconds(pid);
  await new Promise((r) => setTimeout(r, IDLE_S * 1000));
  const periodicPct = ((await cpuSeconds(pid)) - cpu0) / IDLE_S * 100;
  // Keeper off: SIGTERM stops them all.
  const t1 = performance.now();
  await s.server.kill('SIGTERM');
  const stopOffS = (performance.now() - t1) / 1000;
  const leftOff = (await untilNone(cmd, 1000)).left;
  // A server with the keeper starts them all again (not all back in time is a figure too, not a failure of the whole bench).
  const t2 = performance.now();
  s = await startServer(s.data, KEEPER(true));
  const coldStartS = (await untilRunning(s, n, t2, RESTART_WAIT_MS).catch(() => NaN)) / 1000;
  // Keeper on: SIGTERM lets go of them; the next server re-adopts them.
  const t3 = performance.now();
  await s.server.kill('SIGTERM');
  const detachS = (performance.now() - t3) / 1000;
  const survivors = (await processes((c) => c.join(' ') === cmd.join(' '))).length;
  const t4 = performance.now();
  s = await startServer(s.data, KEEPER(true));
  pid = s.server.child.pid!;
  const adoptS = (await untilRunning(s, n, t4, RESTART_WAIT_MS).catch(() => NaN)) / 1000;
  const adoptHow = survivors >= n ? 're-adopted' : survivors === 0 ? 'restarted' : `${survivors} re-adopted, the rest restarted`;
  // Stop everything with the keeper on: the server lets go, then the keeper's SIGTERM stops them.
  await s.server.kill('SIGTERM');
  const keeperPid = Number((await readFile(path.join(s.data, 'keeper', 'pid'), 'utf8').catch(() => '0')).split(' ')[0]);
  const t5 = performance.now();
  if (keeperPid > 1) process.kill(keeperPid, 'SIGTERM');
  const gone = await untilNone(cmd, 120_000);
  const keeperStopS = (performance.now() - t5) / 1000;
  if (gone.left) for (const p of await processes((c) => c.join(' ') === cmd.join(' '))) process.kill(p, 'SIGKILL');
  await rm(s.data, { recursive: true, force: true });
  return {
    n, idleRss, loadedRss, idleFds, loadedFds, createS, createCpuMs, firstRate, lastRate, bwrapRate: floor,
    listMs: percentile(listMs, 50), listBytes, periodicPct, stopOffS, leftOff, coldStartS, detachS, survivors,
    adoptS, adoptHow, keeperStopS, leftOn: gone.left, load,
  };
}

/** What one instance with a port adds: its pasta forwarder (a process of its own) and the server's descriptors. */
async function portCost(): Promise<string> {
  const k = 20;
  const s = await startServer();
  const pid = s.server.child.pid!;
  const pastaRss = async () => {
    let mb = 0;
    // pasta is passt under another name: its comm may be passt.avx2.
    const pids = await processes((c, comm) => /^pas(ta|st)/.test(comm) && c.some((a) => /pasta/.test(a)));
    for (const p of pids) mb += await rssMb(p).catch(() => 0);
    return { n: pids.length, mb };
  };
  await createTimed(s, 'warm', CMD);
  const fds0 = await fdCount(pid);
  const rss0 = await rssMb(pid);
  const pasta0 = await pastaRss();
  const t = performance.now();
  for (let i = 0; i < k; i++) await createTimed(s, `p-${i}`, CMD, { ports: [{ name: 'web' }] });
  const ms = (performance.now() - t) / k;
  await new Promise((r) => setTimeout(r, 1000));
  const pasta1 = await pastaRss();
  const fds1 = await fdCount(pid);
  const rss1 = await rssMb(pid);
  await stopServer(s);
  return (
    `An instance with a port (${k} created one at a time): ${fmt(ms, 0)} ms a create, ` +
    `${fmt((pasta1.n - pasta0.n) / k, 1)} pasta process each at ${fmt((pasta1.mb - pasta0.mb) / k, 2)} MB RSS, ` +
    `${fmt((fds1 - fds0) / k, 1)} server descriptors and ${fmt((rss1 - rss0) / k, 2)} MB of server RSS each.`
  );
}

async function scale(): Promise<string> {
  const rows: ScaleRow[] = [];
  for (const n of SCALE) rows.push(await scaleOnce(n));
  const ports = await portCost();
  const perInstance = (r: ScaleRow) => (r.loadedFds - r.idleFds) / r.n;
  const col = (what: string, f: (r: ScaleRow) => string) => [what, ...rows.map(f)];
  const secs = (s: number) => (Number.isNaN(s) ? `> ${RESTART_WAIT_MS / 1000}` : fmt(s, 1));
  return [
    table(
      ['what', ...rows.map((r) => `${r.n} instances`), 'target (5,000)'],
      [
        [...col('load average before the run', (r) => r.load), ''],
        [...col('server RSS, idle → loaded (MB)', (r) => `${fmt(r.idleRss)} → ${fmt(r.loadedRss)}`), '≤ 250'],
        [...col('server RSS per instance (KB)', (r) => fmt(((r.loadedRss - r.idleRss) * 1024) / r.n, 1)), ''],
        [...col('server descriptors, idle → loaded (per instance)', (r) => `${r.idleFds} → ${r.loadedFds} (${fmt(perInstance(r), 2)})`), '< 20,000 in all'],
        [...col('created in (s), 8 clients', (r) => fmt(r.createS, 1)), ''],
        [...col('creates per second: overall', (r) => fmt(r.n / r.createS, 0)), '≥ 200'],
        [...col('creates per second: first → last tenth', (r) => `${fmt(r.firstRate, 0)} → ${fmt(r.lastRate, 0)}`), ''],
        [...col(`floor: bwrap alone, ${FLOOR_N} spawns 8 in flight, with the instances running (per second)`, (r) => fmt(r.bwrapRate, 0)), ''],
        [...col('server CPU per create (ms)', (r) => fmt(r.createCpuMs, 1)), ''],
        [...col('`GET /api/v1/instances`, all (ms, median of 7)', (r) => `${fmt(r.listMs, 0)} (${fmt(r.listBytes / 1e6, 1)} MB)`), '< 100'],
        [...col(`periodic work, ${IDLE_S} s alone (% of one core)`, (r) => fmt(r.periodicPct, 1)), '< 5'],
        [...col('keeper off: SIGTERM until the server exited (s)', (r) => fmt(r.stopOffS, 1)), '< 10'],
        [...col('keeper off: `sleep` processes left after it', (r) => String(r.leftOff)), '0'],
        [...col('next server (keeper on) until all run again (s; restarted)', (r) => secs(r.coldStartS)), '< 30'],
        [...col('keeper on: SIGTERM until the server exited (s; workloads let go)', (r) => `${fmt(r.detachS, 1)} (${r.survivors} ran on)`), ''],
        [...col('keeper on: next server until all run again (s)', (r) => `${secs(r.adoptS)} (${r.adoptHow})`), '< 30'],
        [...col('keeper on, stop everything: SIGTERM of the keeper until no `sleep` was left (s)', (r) => fmt(r.keeperStopS, 1)), '< 10'],
        [...col('keeper on: `sleep` processes left after it', (r) => String(r.leftOn)), '0'],
      ],
    ),
    '',
    `Port-less \`sleep\` instances of one user (quotas raised to 10,000 instances, 8 TiB), created with 8 requests in flight by a ` +
      `server with the keeper off; the floor row spawns bwrap alone (same sandbox argv, no cgroup, no store) while those instances run. ` +
      `The idle server's CPU is read from /proc over ${IDLE_S} s (stats sampling every 5 s, metering ticks, reconcile every 10 s, a disk check ` +
      `every 30 s). Then: SIGTERM of that server (keeper off: every workload is stopped); a new server with the keeper on, on the same ` +
      `data dir, starts them all again (timed until the listing shows every instance running); its SIGTERM lets go of them; the next ` +
      `server re-adopts them; and its keeper's SIGTERM stops them all. ` +
      ports,
  ].join('\n');
}

/** Seconds for `sh -c CMD` to finish with its stdout to /dev/null. */
function devNullSeconds(cmd: string): Promise<number> {
  const t = performance.now();
  const child = spawn('sh', ['-c', `${cmd} > /dev/null`], { stdio: 'ignore' });
  return new Promise((resolve) => child.once('exit', () => resolve((performance.now() - t) / 1000)));
}

interface Received {
  bytes: number;
  lines: number;
  frames: number;
  /** Lines the server said it dropped for this client (its markers). */
  dropped: number;
  seconds: number;
}

/**
 * Reads a WebSocket's text frames (each one line or several separated by "\n") until
 * `total` bytes of lines came or a second passed without a frame; seconds from the first
 * frame to the last.
 */
async function receiveLines(url: string, total: number, headers: Record<string, string> = {}): Promise<Received> {
  const ws = new WebSocket(url, { headers });
  const r: Received = { bytes: 0, lines: 0, frames: 0, dropped: 0, seconds: 0 };
  let first = 0;
  let last = 0;
  await new Promise<void>((resolve, reject) => {
    let idle: NodeJS.Timeout | undefined;
    ws.once('error', reject);
    ws.on('message', (data: Buffer) => {
      const now = performance.now();
      first ||= now;
      last = now;
      r.frames++;
      for (const text of data.toString().split('\n')) {
        const m = /^\[corral: (\d+) lines dropped/.exec(text);
        if (m) r.dropped += Number(m[1]);
        else {
          r.bytes += Buffer.byteLength(text) + 1;
          r.lines++;
        }
      }
      clearTimeout(idle);
      // The child writes `total` bytes then sleeps: a second of silence means it is done.
      idle = setTimeout(resolve, 1000);
      if (r.bytes >= total) resolve();
    });
  });
  ws.close();
  r.seconds = (last - first) / 1000;
  return r;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The floor: a bare Node program forwarding the child's pipe to a WebSocket (log-stream-floor.ts). */
async function floorReceived(writer: string): Promise<Received> {
  const floor = spawn(process.execPath, ['--import', 'tsx', new URL('./log-stream-floor.ts', import.meta.url).pathname, writer], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const port = await new Promise<number>((resolve) => floor.stdout.once('data', (d: Buffer) => resolve(Number(d.toString()))));
    return await receiveLines(`ws://127.0.0.1:${port}`, STREAM_BYTES);
  } finally {
    floor.kill();
  }
}

async function streaming(): Promise<string> {
  const load = (await readFile('/proc/loadavg', 'utf8')).split(' ')[0];
  const line = 'x'.repeat(999);
  const writer = `yes ${line} | head -c ${STREAM_BYTES}`;
  const nullS = await devNullSeconds(writer);
  const floor = await floorReceived(writer);
  // The keeper on, as by default: the server reads the workload's FIFO itself.
  const s = await startServer(undefined, KEEPER(true));
  // The child waits a moment so the client is attached before the first byte.
  const res = await api(s.server, s.token, 'POST', '/api/v1/instances', { name: 'firehose', shell: `sleep 1; ${writer}; sleep 1000` });
  const serverPid = s.server.child.pid!;
  const cpu0 = await cpuSeconds(serverPid);
  const got = await receiveLines(`${s.server.url.replace('http', 'ws')}/api/v1/instances/${res.body.id}/attach`, STREAM_BYTES, {
    authorization: `Bearer ${s.token}`,
  });
  // From before the first byte to the last line received (the child starts writing after a second of sleep).
  const serverCpu = (await cpuSeconds(serverPid)) - cpu0;
  // With the keeper (the default) the firehose outlives the server: the keeper's SIGTERM stops it.
  const keeperPid = Number((await readFile(path.join(s.data, 'keeper', 'pid'), 'utf8').catch(() => '0')).split(' ')[0]);
  await s.server.kill('SIGTERM');
  if (keeperPid > 1) {
    process.kill(keeperPid, 'SIGTERM');
    for (let i = 0; i < 100 && isAlive(keeperPid); i++) await new Promise((r) => setTimeout(r, 100));
  }
  await stopServer(s);
  const mbps = (b: number, sec: number) => fmt(b / 1e6 / sec);
  return [
    table(
      ['what', 'MB', 'seconds', 'MB/s'],
      [
        ['child → /dev/null', fmt(STREAM_BYTES / 1e6, 0), fmt(nullS, 2), mbps(STREAM_BYTES, nullS)],
        ['floor: child → bare Node program → WebSocket client (no lines, no log)', fmt(floor.bytes / 1e6, 0), fmt(floor.seconds, 2), mbps(floor.bytes, floor.seconds)],
        ['child → corral → attached WebSocket client', fmt(got.bytes / 1e6, 0), fmt(got.seconds, 2), mbps(got.bytes, got.seconds)],
      ],
    ),
    '',
    `1000-byte lines (\`yes\`), the server reading the keeper's FIFO (the default): ${got.lines} lines in ${got.frames} WebSocket frames (a read of the pipe a frame, sent ` +
      `as read, and a small one for the line a read completes; the floor sent ${floor.frames}, one per chunk read from the pipe); each line also goes to the rotating log ` +
      `file and the in-memory tail. Lines lost for the client (it fell more than 8 MiB behind): ${got.dropped}; of the ` +
      `${STREAM_BYTES / 1000} written, ${STREAM_BYTES / 1000 - got.lines - got.dropped} unaccounted for. ` +
      `Server CPU (all its threads, the log file's writes included) for the ${fmt(STREAM_BYTES / 1e6, 0)} MB: ${fmt(serverCpu, 2)} s. ` +
      `Load average before the run: ${load}. Target: ≥ 150 MB/s, no line lost.`,
  ].join('\n');
}

const ONLY = process.env.BENCH_INSTANCES_ONLY;

const bench: Benchmark = async () => [
  ...(!ONLY || ONLY === 'latency' ? [{ title: 'Instances: create → running', markdown: await latency() }] : []),
  ...(!ONLY || ONLY === 'memory' ? [{ title: 'Instances: supervisor memory', markdown: await memory() }] : []),
  ...(!ONLY || ONLY === 'scale' ? [{ title: 'Instances: 500 and 5,000 on one server', markdown: await scale() }] : []),
  ...(!ONLY || ONLY === 'streaming' ? [{ title: 'Instances: log streaming to an attached client', markdown: await streaming() }] : []),
];
export default bench;
