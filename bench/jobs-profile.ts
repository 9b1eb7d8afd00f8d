/**
 * Where the server's CPU goes per job: starts a server under `node --cpu-prof`, posts
 * `sh -c 'echo hi'` jobs from CLIENTS clients for SECONDS, stops it (the profile is written
 * on exit) and prints the top self-time entries of the profile. Not part of `npm run bench`
 * (a tool for docs/jobs.md, "How a job starts fast"):
 *
 *   node --import tsx bench/jobs-profile.ts [seconds] [clients]
 *
 * PROFILE_CLI=/path/to/bin/corral.js profiles another build (say, a worktree of an older
 * commit) with the same load, for a before/after in one sitting.
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { Pool } from 'undici';
import { spawn } from 'node:child_process';
import { CLI, createToken, login, tempDir, ADMIN_PASSWORD } from '../test/helpers/server.js';

const SECONDS = Number(process.argv[2] ?? 10);
const CLIENTS = Number(process.argv[3] ?? 16);

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount: number; children?: number[] }
interface Profile { nodes: Node[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

const data = await tempDir('corral-prof-');
const profDir = await tempDir('corral-prof-out-');
// --cpu-prof is refused in NODE_OPTIONS on Node 20: the server is started here with it.
const child = spawn(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${profDir}`, process.env.PROFILE_CLI ?? CLI, 'serve', '--data', data, '--port', '0'], {
  env: { ...process.env, CORRAL_ADMIN_PASSWORD: ADMIN_PASSWORD, CORRAL_LOG_LEVEL: process.env.CORRAL_LOG_LEVEL ?? 'info' },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const exited = new Promise((r) => child.once('exit', r));
let out = '';
const url = await new Promise<string>((resolve) => {
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    const m = /"url":"(http[^"]+)".*"msg":"corral is listening"/.exec(out);
    if (m) resolve(m[1]!);
    if (out.length > 1e6) out = out.slice(-1e5);
  });
});
const server = { url, kill: async () => { child.kill('SIGTERM'); await exited; } };
const pool = new Pool(server.url, { connections: CLIENTS, pipelining: 1 });
const token = await createToken(server.url, await login(server.url, 'admin', ADMIN_PASSWORD), 'prof', ['jobs:write']);
const post = async () => {
  const res = await pool.request({
    path: '/api/v1/jobs',
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ runtime: 'sh', entry: "sh -c 'echo hi'" }),
  });
  const text = await res.body.text();
  if (res.statusCode !== 200 || !text.includes('"status":"ok"')) throw new Error(text);
};
// A failed job must not leave the server running: it is killed on the way out.
process.on('exit', () => child.kill('SIGKILL'));
await Promise.all(Array.from({ length: CLIENTS }, post));
// The server's own CPU (user + system, from /proc; 100 ticks per second) during the load:
// unlike the profile's wall-clock samples, it does not grow when other processes take the cores.
const cpuMs = async () => {
  const f = (await readFile(`/proc/${child.pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
};
const cpuBefore = await cpuMs();
let done = 0;
const until = Date.now() + SECONDS * 1000;
await Promise.all(Array.from({ length: CLIENTS }, async () => { while (Date.now() < until) { await post(); done++; } }));
const cpu = (await cpuMs()) - cpuBefore;
await pool.close();
await server.kill();
const file = (await readdir(profDir)).find((f) => f.endsWith('.cpuprofile'));
if (!file) throw new Error('no profile written');
const prof = JSON.parse(await readFile(path.join(profDir, file), 'utf8')) as Profile;
// Self time per function (url:line), from the sample deltas.
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const self = new Map<string, number>();
prof.samples.forEach((id, i) => {
  const n = byId.get(id)!;
  const f = n.callFrame;
  const key = `${f.functionName || '(anon)'} ${f.url.replace(/^file:\/\/.*?node_modules\//, '').replace(/^file:\/\/.*?\/dist\//, 'dist/')}:${f.lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + (prof.timeDeltas[i] ?? 0));
});
const total = [...self.values()].reduce((a, b) => a + b, 0);
const idle = self.get('(idle) :0') ?? 0;
const busy = total - idle;
// By package / area too: node_modules package, corral dir, or node internals.
const area = new Map<string, number>();
for (const [k, us] of self) {
  if (k.startsWith('(idle)')) continue;
  const m = /^\S+ (\S+)/.exec(k)![1]!;
  const a = m.startsWith('dist/') ? m.split('/').slice(0, 3).join('/') : m.startsWith('node:') ? 'node:' + m.slice(5).split(/[/:]/)[0] : m.split('/')[0]!.startsWith('@') ? m.split('/').slice(0, 2).join('/') : m.split(/[/:]/)[0]!;
  area.set(a, (area.get(a) ?? 0) + us);
}
console.log(`${done} jobs in ${SECONDS}s (${(done / SECONDS).toFixed(0)}/s); server CPU ${(cpu / done).toFixed(2)} ms per job (/proc); busy ${(busy / 1000 / done).toFixed(3)} ms per job (profile), idle ${((idle / total) * 100).toFixed(0)}%`);
console.log('\ntop self time (ms per job):');
for (const [k, us] of [...self].filter(([k]) => !k.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`${(us / 1000 / done).toFixed(3)}  ${k}`);
console.log('\nby area (ms per job):');
for (const [k, us] of [...area].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${(us / 1000 / done).toFixed(3)}  ${k}`);
await rm(data, { recursive: true, force: true });
if (process.env.KEEP_PROFILE) console.log(`profile: ${path.join(profDir, file)}`);
else await rm(profDir, { recursive: true, force: true });
