/**
 * Where the server's CPU goes per instance create, and whether it grows with the number of
 * instances: starts a server with its inspector on loopback, creates port-less `sleep`
 * instances with 8 clients and profiles two windows of WINDOW creates each — the first from
 * 0 instances, the second from AT existing ones — printing for each the server's CPU per
 * create (user and system, from /proc) and the top self-time entries of the profile, side by
 * side. Not part of `npm run bench` (a tool for docs/instances.md, "Scale"):
 *
 *   node --import tsx bench/instances-profile.ts [window] [at]
 *
 * PROFILE_CLI=/path/to/bin/corral.js profiles another build. Run it under the bench lock.
 */
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import WebSocket from 'ws';
import { ROOT, ADMIN_PASSWORD, spawnServer, tokenFor, tempDir, api as call0 } from './child-server.js';

const WINDOW = Number(process.argv[2] ?? 400);
const AT = Number(process.argv[3] ?? 3000);
const CLIENTS = 8;

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface Profile { nodes: Node[]; samples: number[]; timeDeltas: number[] }

const data = await tempDir('corral-prof-inst-');
const shutdownProfile = path.join(data, 'shutdown.cpuprofile');
const server = await spawnServer(data, {
  NODE_OPTIONS: `--inspect=127.0.0.1:0 --require ${path.join(ROOT, 'bench/profile-on-sigterm.cjs')}`,
  PROFILE_ON_SIGTERM: shutdownProfile,
  // Workloads die with the server: its SIGTERM stops them all (what the shutdown profile shows).
  CORRAL_DRIVERS__PROCESS__KEEPER: process.env.CORRAL_DRIVERS__PROCESS__KEEPER ?? 'false',
  CORRAL_QUOTAS__INSTANCES: '100000',
  CORRAL_QUOTAS__RUNNING_INSTANCES: '100000',
  CORRAL_QUOTAS__MEMORY_BYTES: String(2 ** 45),
});
const pid = server.child.pid!;
process.on('exit', () => server.child.kill('SIGKILL'));
const out = server.output();
const inspectorUrl = /Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[\w-]+)/.exec(out)?.[1];
if (!inspectorUrl) throw new Error('the server did not start its inspector');
const ws = new WebSocket(inspectorUrl);
await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
let callId = 0;
const call = <T>(method: string, params: object = {}) =>
  new Promise<T>((resolve) => {
    const me = ++callId;
    const onMessage = (d: WebSocket.RawData) => {
      const msg = JSON.parse(d.toString()) as { id?: number; result: T };
      if (msg.id !== me) return;
      ws.off('message', onMessage);
      resolve(msg.result);
    };
    ws.on('message', onMessage);
    ws.send(JSON.stringify({ id: me, method, params }));
  });
await call('Profiler.enable');
await call('Profiler.setSamplingInterval', { interval: 500 });

const token = await tokenFor(server.url, 'admin', ADMIN_PASSWORD, 'prof');
const api = (m: string, p: string, body?: unknown) => call0(server, token, m, p, body);
let created = 0;
const createUpTo = async (n: number) => {
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (created < n) {
        const i = created++;
        const res = await api('POST', '/api/v1/instances', { name: `p-${i}`, command: ['sleep', '300000'], restart: 'never' });
        if (res.status !== 201) throw new Error(`create ${i}: ${res.status} ${JSON.stringify(res.body)}`);
      }
    }),
  );
};
const cpuTicks = async () => {
  const f = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return { user: Number(f[11]) * 10, sys: Number(f[12]) * 10 };
};

async function window(upTo: number) {
  const from = created;
  const c0 = await cpuTicks();
  const t = performance.now();
  await call('Profiler.start');
  await createUpTo(upTo);
  const { profile } = await call<{ profile: Profile }>('Profiler.stop');
  const wallS = (performance.now() - t) / 1000;
  const c1 = await cpuTicks();
  const n = upTo - from;
  return { from, n, rate: n / wallS, userMs: (c1.user - c0.user) / n, sysMs: (c1.sys - c0.sys) / n, ...selfTimes(profile) };
}

const frameKey = (f: Node['callFrame']) =>
  `${f.functionName || '(anon)'} ${f.url.replace(/^file:\/\/.*?node_modules\//, '').replace(/^file:\/\/.*?\/dist\//, 'dist/')}:${f.lineNumber + 1}`;

/** Self time (µs) per function, and per "function ← the nearest corral function above it" (who made the native call). */
function selfTimes(profile: Profile) {
  const byId = new Map(profile.nodes.map((x) => [x.id, x]));
  const parent = new Map<number, number>();
  for (const x of profile.nodes) for (const c of x.children ?? []) parent.set(c, x.id);
  const self = new Map<string, number>();
  const callers = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    const key = frameKey(byId.get(id)!.callFrame);
    self.set(key, (self.get(key) ?? 0) + us);
    let up = id;
    while (up !== undefined && !byId.get(up)!.callFrame.url.includes('/dist/')) up = parent.get(up)!;
    const via = `${key} ← ${up === undefined ? '?' : frameKey(byId.get(up)!.callFrame)}`;
    callers.set(via, (callers.get(via) ?? 0) + us);
  });
  return { self, callers };
}

const top = (m: Map<string, number>, n: number, per: number) =>
  [...m].filter(([k]) => !k.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, us]) => `${(us / 1000 / per).toFixed(3)}  ${k}`);

const a = await window(WINDOW);
await createUpTo(AT);
const b = await window(AT + WINDOW);
// The listing of all, 7 times, and the periodic work over 20 s alone.
await call('Profiler.start');
const tl = performance.now();
for (let i = 0; i < 7; i++) await api('GET', '/api/v1/instances');
const listMs = (performance.now() - tl) / 7;
const listing = selfTimes((await call<{ profile: Profile }>('Profiler.stop')).profile);
const ci = await cpuTicks();
await call('Profiler.start');
await new Promise((r) => setTimeout(r, 20_000));
const idle = selfTimes((await call<{ profile: Profile }>('Profiler.stop')).profile);
const ci1 = await cpuTicks();
const idlePct = ((ci1.user + ci1.sys - ci.user - ci.sys) / 20_000) * 100;
ws.close();
const fd = (await import('node:fs')).readdirSync(`/proc/${pid}/fd`).length;
const t0 = performance.now();
await server.kill('SIGTERM');
const stopS = (performance.now() - t0) / 1000;
const shutdown = selfTimes(JSON.parse(await readFile(shutdownProfile, 'utf8')) as Profile);
await rm(data, { recursive: true, force: true });

for (const w of [a, b]) {
  console.log(`\ncreates ${w.from} → ${w.from + w.n}: ${w.rate.toFixed(0)}/s, server CPU ${w.userMs.toFixed(2)} ms user + ${w.sysMs.toFixed(2)} ms system per create`);
}
console.log(`descriptors at ${created}: ${fd}; SIGTERM took ${stopS.toFixed(1)} s`);
const keys = new Set([...a.self.keys(), ...b.self.keys()]);
const rows = [...keys]
  .filter((k) => !k.startsWith('(idle)'))
  .map((k) => ({ k, a: (a.self.get(k) ?? 0) / 1000 / a.n, b: (b.self.get(k) ?? 0) / 1000 / b.n }))
  .sort((x, y) => Math.max(y.a, y.b) - Math.max(x.a, x.b))
  .slice(0, 40);
console.log(`\nself ms per create: at 0 | at ${AT} | function`);
for (const r of rows) console.log(`${r.a.toFixed(3)} | ${r.b.toFixed(3)} | ${r.k}`);
const growth = [...keys]
  .filter((k) => !k.startsWith('(idle)'))
  .map((k) => ({ k, d: ((b.self.get(k) ?? 0) / b.n - (a.self.get(k) ?? 0) / a.n) / 1000 }))
  .sort((x, y) => y.d - x.d)
  .slice(0, 15);
console.log('\ngrew most (ms per create):');
for (const g of growth) console.log(`${g.d.toFixed(3)}  ${g.k}`);
for (const [w, name] of [[a, 'at 0'], [b, `at ${AT}`]] as const) {
  console.log(`\nself ms per create ${name}, by the corral function that made the call:`);
  for (const line of top(w.callers, 25, w.n)) console.log(line);
}
console.log(`\nlisting of ${created} (${listMs.toFixed(0)} ms each, client side): self ms per listing, by caller`);
for (const line of top(listing.callers, 20, 7)) console.log(line);
console.log(`\nperiodic work with ${created} instances: ${idlePct.toFixed(1)} % of a core (/proc, profiler on); self ms per second, by caller`);
for (const line of top(idle.callers, 20, 20)) console.log(line);
console.log(`\nshutdown (SIGTERM → exit, ${stopS.toFixed(1)} s): self ms in all`);
for (const line of top(shutdown.self, 25, 1)) console.log(line);
console.log('\nshutdown, by the corral function that made the call (ms in all):');
for (const line of top(shutdown.callers, 30, 1)) console.log(line);
