/**
 * The listing and the server's periodic work (stats samples, metering ticks, reconcile, disk
 * checks) with N running port-less `sleep` instances, at several N in one run: instances are
 * created by 8 clients up to each count, then the server is left alone and its CPU read from
 * /proc. At the last count the same instances are measured again under a server with the
 * stats budget given in BENCH_OLD_BUDGET (200, the old default): the keeper holds them across
 * the restart. Not part of `npm run bench`; run it under the bench lock:
 *
 *   node --import tsx bench/instances-periodic.ts [n,n,…] [idle seconds]
 */
import { execFile } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { loadavg } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { api, ADMIN_PASSWORD, spawnServer, tempDir, tokenFor, type ChildServer } from './child-server.js';
import { curlMs } from './lib.js';

const COUNTS = (process.argv[2] ?? '500,2000,5000').split(',').map(Number);
const IDLE_S = Number(process.argv[3] ?? 30);
const OLD_BUDGET = process.env.BENCH_OLD_BUDGET ?? '200';
const CMD = ['sleep', '300001'];
const run = promisify(execFile);

const env = (extra: NodeJS.ProcessEnv = {}) => ({
  CORRAL_DRIVERS__PROCESS__KEEPER: 'true',
  CORRAL_QUOTAS__INSTANCES: '10000',
  CORRAL_QUOTAS__RUNNING_INSTANCES: '10000',
  CORRAL_QUOTAS__MEMORY_BYTES: String(2 ** 43),
  ...extra,
});

const cpuSeconds = async (pid: number) => {
  const f = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function listing(s: ChildServer, token: string, n: number): Promise<{ ms: number; mb: number; running: number }> {
  const url = `${s.url}/api/v1/instances`;
  const ms: number[] = [];
  for (let i = 0; i < 7; i++) ms.push(await curlMs(url, { authorization: `Bearer ${token}` }));
  const body = await (await fetch(url, { headers: { authorization: `Bearer ${token}` } })).text();
  const docs = (JSON.parse(body) as { instances: { state: string }[] }).instances;
  if (docs.length !== n) throw new Error(`listed ${docs.length} of ${n}`);
  return { ms: median(ms), mb: body.length / 1e6, running: docs.filter((d) => d.state === 'running').length };
}

async function periodic(pid: number): Promise<number> {
  const c0 = await cpuSeconds(pid);
  await new Promise((r) => setTimeout(r, IDLE_S * 1000));
  return (((await cpuSeconds(pid)) - c0) / IDLE_S) * 100;
}

const data = await tempDir('corral-bench-periodic-');
let server = await spawnServer(data, env());
let token = await tokenFor(server.url, 'admin', ADMIN_PASSWORD, 'periodic');
let created = 0;
const rows: string[] = [];
try {
  for (const n of COUNTS) {
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (created < n) {
          const i = created++;
          const res = await api(server, token, 'POST', '/api/v1/instances', { name: `p-${i}`, command: CMD, restart: 'never' });
          if (res.status !== 201) throw new Error(`create ${i}: ${res.status} ${JSON.stringify(res.body)}`);
        }
      }),
    );
    await new Promise((r) => setTimeout(r, 3000));
    const load = loadavg()[0]!.toFixed(1);
    const l = await listing(server, token, n);
    const pct = await periodic(server.child.pid!);
    rows.push(`${n}: listing ${l.ms.toFixed(1)} ms (${l.mb.toFixed(2)} MB, ${l.running} running); periodic ${pct.toFixed(2)} % of a core over ${IDLE_S} s (load ${load} → ${loadavg()[0]!.toFixed(1)})`);
    console.log(rows.at(-1));
  }
  // The same instances under the old stats budget (the keeper holds them across the restart).
  const n = created;
  await server.kill('SIGTERM');
  server = await spawnServer(data, env({ CORRAL_INSTANCES__STATS__MAX_SAMPLES_PER_SECOND: OLD_BUDGET }));
  token = await tokenFor(server.url, 'admin', ADMIN_PASSWORD, 'periodic-old');
  const until = Date.now() + 120_000;
  while ((await listing(server, token, n)).running < n && Date.now() < until) await new Promise((r) => setTimeout(r, 2000));
  await new Promise((r) => setTimeout(r, 5000));
  const load = loadavg()[0]!.toFixed(1);
  const pct = await periodic(server.child.pid!);
  rows.push(`${n}, stats budget ${OLD_BUDGET}/s: periodic ${pct.toFixed(2)} % of a core over ${IDLE_S} s (load ${load} → ${loadavg()[0]!.toFixed(1)})`);
  console.log(rows.at(-1));
} finally {
  await server.kill('SIGTERM').catch(() => undefined);
  const keeper = Number((await readFile(path.join(data, 'keeper', 'pid'), 'utf8').catch(() => '0')).split(' ')[0]);
  if (keeper > 1) process.kill(keeper, 'SIGTERM');
  // Until no workload of this run is left (the keeper stops them all).
  for (let i = 0; i < 120; i++) {
    const { stdout } = await run('pgrep', ['-fx', CMD.join(' ')]).catch(() => ({ stdout: '' }));
    if (!stdout.trim()) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  await rm(data, { recursive: true, force: true });
}
