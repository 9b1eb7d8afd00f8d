/**
 * A restart with N kept workloads (docs/instances.md, "Outliving the manager"): what
 * re-adopting them costs the process driver, apart from the rest of the server (the store,
 * the supervisor's writes: bench/instances.bench.ts measures the whole restart).
 *
 *   npm run build && npx tsx bench/keeper-adopt.ts 1000 5000
 *
 * For each N: a first "server" (a child process, the compiled driver and keeper) starts N
 * idle `sleep` workloads through the keeper (bwrap sandboxes with cgroups, as by default),
 * writes their handles and dies by SIGKILL. Then this process, as the next server, adopts
 * every handle as the supervisor does at start (in its lanes of 32) and reports how long
 * that took, the keeper's and this process's descriptors, and what it cost this process in
 * CPU. Finally the keeper is stopped (SIGTERM), and with it every workload.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Handle, WorkloadSpec } from '../src/drivers/driver.js';

const dist = new URL('../dist/drivers/process/process-driver.js', import.meta.url).href;
const { ProcessDriver } = (await import(dist)) as typeof import('../src/drivers/process/process-driver.js');

/** Width of the supervisor's start-up lanes (supervisor.ts, OPEN_CONVERGE_WIDTH / adoption). */
const LANES = Number(process.env.LANES ?? 32);

const spec = (dir: string, i: number): WorkloadSpec => ({
  instanceId: `i${i}`,
  owner: 'bench',
  generation: 1,
  command: ['sleep', '3600'],
  env: { PATH: '/usr/bin:/bin' },
  cwd: '/',
  dataDir: path.join(dir, 'instances', `i${i}`),
  dataMount: '/data',
  mounts: [],
  ports: [],
  limits: {},
  network: false,
  stop: { signal: 'SIGTERM', graceMs: 2_000 },
});

const fds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

/** Runs in the first "server": starts N workloads, writes their handles, then waits to be killed. */
async function first(dir: string, n: number): Promise<void> {
  const driver = new ProcessDriver({ hide: [dir], keeperDir: path.join(dir, 'keeper'), warn: () => undefined });
  const sink = { output: () => undefined, exit: () => undefined };
  const handles: Handle[] = [];
  let next = 0;
  const t0 = Date.now();
  await Promise.all(
    Array.from({ length: LANES }, async () => {
      while (next < n) {
        const i = next++;
        handles[i] = (await driver.start(spec(dir, i), sink)).handle;
      }
    }),
  );
  writeFileSync(path.join(dir, 'handles.json'), JSON.stringify(handles));
  process.stdout.write(`started ${n} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  await new Promise(() => undefined);
}

async function measure(n: number): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'corral-keeper-adopt-'));
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--first', dir, String(n)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      process.stdout.write(`  N=${n}: ${d}`);
      if (d.toString().startsWith('started')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`the first server exited with ${code}`)));
  });
  child.removeAllListeners('exit');
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  const handles = JSON.parse(readFileSync(path.join(dir, 'handles.json'), 'utf8')) as Handle[];
  const keeperPid = Number(readFileSync(path.join(dir, 'keeper', 'pid'), 'utf8').split(' ')[0]);

  const driver = new ProcessDriver({ hide: [dir], keeperDir: path.join(dir, 'keeper'), warn: () => undefined });
  const sink = { output: () => undefined, exit: () => undefined };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let next = 0;
  let adopted = 0;
  await Promise.all(
    Array.from({ length: LANES }, async () => {
      while (next < handles.length) {
        const h = handles[next++]!;
        if (await driver.adopt(h, sink)) adopted++;
      }
    }),
  );
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  console.log(
    `  N=${n}: adopted ${adopted}/${n} in ${(ms / 1000).toFixed(2)} s (${(ms / n).toFixed(2)} ms each, lanes ${LANES}); ` +
      `this process's CPU ${((cpu.user + cpu.system) / 1000 / n).toFixed(2)} ms each; descriptors: keeper ${fds(keeperPid)}, adopter ${fds(process.pid)}`,
  );
  process.kill(keeperPid, 'SIGTERM');
  while (readdirSync('/proc').includes(String(keeperPid))) await new Promise((r) => setTimeout(r, 200));
  rmSync(dir, { recursive: true, force: true });
}

if (process.argv[2] === '--first') {
  await first(process.argv[3]!, Number(process.argv[4]));
} else {
  const counts = process.argv.slice(2).map(Number);
  for (const n of counts.length ? counts : [1000]) await measure(n);
  process.exit(0);
}
