/**
 * The floor under "stop everything" (docs/instances.md, "Scale"): N bare bwrap sandboxes
 * (the process driver's argv, port-less, no cgroup, no corral), all sent SIGKILL at once, timed
 * until no process of theirs is left — what the kernel alone needs to tear N sandboxes down.
 * Not part of `npm run bench` (a tool, minutes at 5,000):
 *
 *   node --import tsx bench/instances-stop-floor.ts [n=5000]
 *
 * Run it under the bench lock.
 */
import { spawn } from 'node:child_process';
import { readdir, readFile, rm } from 'node:fs/promises';
import { sandboxArgv } from '../src/drivers/process/sandbox.js';
import { tempDir } from './child-server.js';

const N = Number(process.argv[2] ?? 5000);
const PATH = '/usr/local/bin:/usr/bin:/bin';
const MARK = `${100_000 + (process.pid % 1000)}`;
const dir = await tempDir('corral-stop-floor-');
const argv = sandboxArgv({ bwrap: 'bwrap', command: ['sleep', MARK], env: { PATH }, cwd: '/data', writable: [{ source: dir, target: '/data' }], readOnly: [], network: false });

const held: number[] = [];
const spawnOne = () =>
  new Promise<void>((resolve, reject) => {
    const c = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore', detached: true, env: { PATH } });
    c.once('error', reject);
    c.once('spawn', () => {
      held.push(c.pid!);
      c.unref();
      resolve();
    });
  });

/** Processes whose command line is exactly `sleep MARK` (the sandboxes' workloads). */
async function left(): Promise<number> {
  let n = 0;
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd === `sleep\0${MARK}\0`) n++;
  }
  return n;
}

const load = async () => (await readFile('/proc/loadavg', 'utf8')).split(' ')[0];
let i = 0;
const t0 = performance.now();
await Promise.all(Array.from({ length: 8 }, async () => {
  while (i++ < N) await spawnOne();
}));
while ((await left()) < N && performance.now() - t0 < 600_000) await new Promise((r) => setTimeout(r, 500));
console.log(`${N} sandboxes up in ${((performance.now() - t0) / 1000).toFixed(1)} s; load ${await load()}`);
await new Promise((r) => setTimeout(r, 5000));
const before = await load();
const t1 = performance.now();
for (const pid of held) {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}
const signalled = performance.now() - t1;
while ((await left()) > 0) await new Promise((r) => setTimeout(r, 100));
console.log(`SIGKILL to all in ${(signalled / 1000).toFixed(2)} s; none left after ${((performance.now() - t1) / 1000).toFixed(1)} s (load ${before} before, ${await load()} after)`);
await rm(dir, { recursive: true, force: true });
