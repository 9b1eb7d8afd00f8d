/**
 * What N running instances cost the server in memory, and how long "stop everything" takes
 * (issue #20; docs/instances.md, "Scale"). Starts `corral serve` (the keeper on, as by
 * default), creates N port-less `sleep` instances with 8 clients, waits until the listing
 * shows all running and prints the server's RSS, JS heap and descriptors, idle and loaded.
 * Then: the server's SIGTERM (it lets the kept workloads go), the keeper's SIGTERM timed
 * until no `sleep` of this run is left. KEEPER=off instead times the server's own SIGTERM
 * stopping them all. HEAP=1 writes a heap snapshot (idle and loaded) into the data dir
 * (`--heapsnapshot-signal`) and keeps the dir.
 *
 *   npm run build && flock /tmp/corral-bench.lock node --import tsx bench/instances-memory.ts 1000
 */
import { readdirSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import WebSocket from 'ws';
import { ADMIN_PASSWORD, api as call0, ROOT, spawnServer, tempDir, tokenFor } from './child-server.js';
import { keeperPids } from '../test/helpers/server.js';

const N = Number(process.argv[2] ?? 1000);
const CLIENTS = 8;
const keeperOn = process.env.KEEPER !== 'off';
const heap = process.env.HEAP === '1';
/** PROFILE=1: the server's shutdown (SIGTERM → exit) is profiled into DATA/shutdown.cpuprofile (profile-on-sigterm.cjs); the dir is kept. */
const profile = process.env.PROFILE === '1';
const SLEEP = '424242';

const data = await tempDir('corral-bench-mem-');
// The server writes its snapshots into its working directory (ours): the data dir.
if (heap) process.chdir(data);
const server = await spawnServer(data, {
  CORRAL_DRIVERS__PROCESS__KEEPER: String(keeperOn),
  CORRAL_QUOTAS__INSTANCES: '100000',
  CORRAL_QUOTAS__RUNNING_INSTANCES: '100000',
  CORRAL_QUOTAS__MEMORY_BYTES: String(2 ** 45),
  // The inspector (on loopback) for a GC before each reading of the heap.
  NODE_OPTIONS: `--inspect=127.0.0.1:0${heap ? ' --heapsnapshot-signal=SIGUSR2' : ''}${profile ? ` --require ${ROOT}/bench/profile-on-sigterm.cjs` : ''}`,
  ...(profile && { PROFILE_ON_SIGTERM: `${data}/shutdown.cpuprofile` }),
});
const pid = server.child.pid!;
process.on('exit', () => server.child.kill('SIGKILL'));
const token = await tokenFor(server.url, 'admin', ADMIN_PASSWORD, 'mem');
const api = (m: string, p: string, body?: unknown) => call0(server, token, m, p, body);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const inspectorUrl = /Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[\w-]+)/.exec(server.output())?.[1];
if (!inspectorUrl) throw new Error('the server did not start its inspector');
const inspector = new WebSocket(inspectorUrl);
await new Promise((resolve, reject) => inspector.once('open', resolve).once('error', reject));
let callId = 0;
function inspect<T>(method: string, params: object = {}): Promise<T> {
  const me = ++callId;
  return new Promise((resolve) => {
    const onMessage = (d: WebSocket.RawData) => {
      const msg = JSON.parse(d.toString()) as { id?: number; result: T };
      if (msg.id !== me) return;
      inspector.off('message', onMessage);
      resolve(msg.result);
    };
    inspector.on('message', onMessage);
    inspector.send(JSON.stringify({ id: me, method, params }));
  });
}

/** The server's JS heap in use and its external memory after a full GC (MB). */
async function heapMb(): Promise<{ used: number; total: number; external: number }> {
  await inspect('HeapProfiler.collectGarbage');
  const r = await inspect<{ result: { value: string } }>('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true });
  const m = JSON.parse(r.result.value) as { heapUsed: number; heapTotal: number; external: number };
  return { used: m.heapUsed / 2 ** 20, total: m.heapTotal / 2 ** 20, external: m.external / 2 ** 20 };
}

function rssMb(p: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0) / 1024;
}
const fds = (p: number) => readdirSync(`/proc/${p}/fd`).length;

/** The pids of this run's workloads (`sleep 424242`). */
function sleeps(): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (argv[0] === 'sleep' && argv[1] === SLEEP) out.push(Number(name));
    } catch {
      /* gone */
    }
  }
  return out;
}

async function snapshot(label: string): Promise<void> {
  if (!heap) return;
  const before = new Set(readdirSync(process.cwd()).filter((f) => f.endsWith('.heapsnapshot')));
  process.kill(pid, 'SIGUSR2');
  // The server writes Heap.<date>.<pid>…heapsnapshot into its cwd (ours): wait for it to appear and settle.
  for (let i = 0; i < 600; i++) {
    await sleep(500);
    const made = readdirSync(process.cwd()).filter((f) => f.endsWith('.heapsnapshot') && !before.has(f));
    if (made.length) {
      await sleep(3000);
      console.log(`heap snapshot (${label}): ${made[0]}`);
      return;
    }
  }
}

await sleep(3000);
const idle = { rss: rssMb(pid), fds: fds(pid), heap: await heapMb() };
await snapshot('idle');

let created = 0;
const t0 = performance.now();
await Promise.all(
  Array.from({ length: CLIENTS }, async () => {
    while (created < N) {
      const i = created++;
      const res = await api('POST', '/api/v1/instances', { name: `m-${i}`, command: ['sleep', SLEEP], restart: 'never' });
      if (res.status !== 201) throw new Error(`create ${i}: ${res.status} ${JSON.stringify(res.body)}`);
    }
  }),
);
for (;;) {
  const res = await api('GET', '/api/v1/instances');
  const items = (res.body as { instances: { state: string }[] }).instances;
  if (items.filter((x) => x.state === 'running').length >= N) break;
  await sleep(1000);
}
const createdS = (performance.now() - t0) / 1000;
await sleep(5000);
const loaded = { rss: rssMb(pid), fds: fds(pid), heap: await heapMb() };
inspector.close();
await snapshot(`${N} running`);

const keeper = keeperOn ? keeperPids(data)[0] : undefined;
const keeperRss = keeper ? rssMb(keeper) : 0;
const t1 = performance.now();
await server.kill('SIGTERM');
const serverStopS = (performance.now() - t1) / 1000;
let keeperStopS = 0;
if (keeper) {
  const t2 = performance.now();
  process.kill(keeper, 'SIGTERM');
  while (sleeps().length) await sleep(100);
  keeperStopS = (performance.now() - t2) / 1000;
}
const left = sleeps();
if (keeper) {
  while (readdirSync('/proc').includes(String(keeper))) await sleep(100);
  for (const line of readFileSync(`${data}/keeper/keeper.log`, 'utf8').split('\n')) if (/stop|TRACE/.test(line)) console.log(`keeper.log: ${line}`);
}
const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

console.log(`N=${N} (keeper ${keeperOn ? 'on' : 'off'}), created and running in ${createdS.toFixed(1)} s; load now ${load}`);
console.log(`server RSS idle → loaded: ${idle.rss.toFixed(1)} → ${loaded.rss.toFixed(1)} MB (${(((loaded.rss - idle.rss) * 1024) / N).toFixed(1)} KB per instance)`);
console.log(
  `server JS heap after a GC, used (total) idle → loaded: ${idle.heap.used.toFixed(1)} (${idle.heap.total.toFixed(1)}) → ${loaded.heap.used.toFixed(1)} (${loaded.heap.total.toFixed(1)}) MB ` +
    `(${(((loaded.heap.used - idle.heap.used) * 1024) / N).toFixed(1)} KB used per instance); external ${idle.heap.external.toFixed(1)} → ${loaded.heap.external.toFixed(1)} MB`,
);
console.log(`server descriptors idle → loaded: ${idle.fds} → ${loaded.fds} (${((loaded.fds - idle.fds) / N).toFixed(2)} per instance)`);
if (keeper) console.log(`keeper RSS loaded: ${keeperRss.toFixed(1)} MB`);
console.log(`server SIGTERM until it exited: ${serverStopS.toFixed(2)} s${keeperOn ? ' (workloads let go)' : ''}`);
if (keeper) console.log(`keeper SIGTERM until no workload was left: ${keeperStopS.toFixed(2)} s`);
console.log(`workloads left: ${left.length}`);
for (const p of left) process.kill(p, 'SIGKILL');
// The keeper writes the last exit files as it leaves.
if (!heap && !profile) await rm(data, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
else console.log(`data dir kept: ${data}`);
