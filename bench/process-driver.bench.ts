/**
 * Process driver start latency, next to what it is built from: a bare spawn of the same
 * command, bwrap spawned directly with the same sandbox argv, and the driver with and
 * without cgroups. Two workloads: `true` (start → exit reported) and a long-lived one
 * (`echo ready; exec sleep 60`: start → first output line, i.e. the workload really runs).
 */
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { detectCgroups, detectSandbox } from '../src/drivers/process/detect.js';
import { ProcessDriver } from '../src/drivers/process/process-driver.js';
import { sandboxArgv } from '../src/drivers/process/sandbox.js';
import type { WorkloadSpec } from '../src/drivers/driver.js';
import { tempDir } from '../test/helpers/server.js';
import { performance } from 'node:perf_hooks';
import { fmt, percentile, table, type Benchmark } from './lib.js';

const N = Number(process.env.BENCH_PROCESS_N ?? 200);
const PATH = '/usr/local/bin:/usr/bin:/bin';
const LONG = 'echo ready; exec sleep 60';
const WARMUP = 5;

/** Spawns argv; resolves at the first stdout byte (`untilOutput`) or at exit. Kills what is left. */
function spawnOnce(argv: string[], untilOutput: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'ignore'], env: { PATH } });
    child.on('error', reject);
    if (untilOutput) {
      child.stdout.once('data', () => {
        resolve();
        child.kill('SIGKILL');
      });
    } else {
      child.stdout.resume();
      child.on('close', () => resolve());
    }
  });
}

function driverOnce(driver: ProcessDriver, spec: WorkloadSpec, untilOutput: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    let done = false;
    driver
      .start(spec, {
        output: () => {
          if (!untilOutput || done) return;
          done = true;
          resolve();
        },
        exit: () => {
          if (!done) resolve();
          done = true;
        },
      })
      .then((w) => (untilOutput ? w.stop('SIGKILL', 0) : undefined))
      .catch(reject);
  });
}

const bench: Benchmark = async () => {
  const sandbox = await detectSandbox();
  const cg = await detectCgroups();
  const data = await tempDir('corral-bench-process-');
  const spec = (shell: string): WorkloadSpec => ({
    instanceId: 'bench',
    owner: 'bench',
    generation: 1,
    command: ['sh', '-c', shell],
    env: { PATH },
    cwd: '/data',
    dataDir: data,
    dataMount: '/data',
    mounts: [],
    ports: [],
    limits: { memoryBytes: 256 * 1024 * 1024, pids: 64, cpus: 1 },
    network: false,
  });
  const bwrap = (shell: string) =>
    sandboxArgv({
      bwrap: sandbox.path ?? 'bwrap',
      command: ['sh', '-c', shell],
      env: { PATH },
      cwd: '/data',
      writable: [{ source: data, target: '/data' }],
      readOnly: [],
      network: false,
    });
  const full = new ProcessDriver({ hide: [], warn: () => {} });
  const noCgroups = new ProcessDriver({ hide: [], cgroups: false, warn: () => {} });
  const unsandboxed = new ProcessDriver({ hide: [], sandbox: false, warn: () => {} });

  const variants: { name: string; run: (shell: string, untilOutput: boolean) => Promise<void>; needs?: boolean }[] = [
    { name: 'bare spawn (sh -c)', run: (s, u) => spawnOnce(['sh', '-c', s], u) },
    { name: 'bwrap directly', run: (s, u) => spawnOnce(bwrap(s), u), needs: sandbox.available },
    { name: 'process driver, no sandbox, cgroups', run: (s, u) => driverOnce(unsandboxed, spec(s), u) },
    { name: 'process driver, bwrap, no cgroups', run: (s, u) => driverOnce(noCgroups, spec(s), u), needs: sandbox.available },
    { name: 'process driver, bwrap + cgroups', run: (s, u) => driverOnce(full, spec(s), u), needs: sandbox.available },
  ];
  // Interleaved (one run of each variant per round), so a load spike from other work on the
  // machine hits every variant alike instead of skewing one row.
  const active = variants.filter((v) => v.needs !== false);
  const samples = active.map(() => ({ exit: [] as number[], running: [] as number[] }));
  for (let round = -WARMUP; round < N; round++) {
    for (const [i, v] of active.entries()) {
      for (const kind of ['exit', 'running'] as const) {
        const t = performance.now();
        await v.run(kind === 'exit' ? 'true' : LONG, kind === 'running');
        if (round >= 0) samples[i]![kind].push(performance.now() - t);
      }
    }
  }
  const cell = (ms: number[]) => [fmt(percentile(ms, 50), 2), fmt(percentile(ms, 99), 2)];
  const rows = active.map((v, i) => [v.name, ...cell(samples[i]!.exit), ...cell(samples[i]!.running)]);
  await Promise.all([full.close(), noCgroups.close(), unsandboxed.close()]);
  await rm(data, { recursive: true, force: true });
  const header = ['how', '`true` p50 ms', '`true` p99 ms', 'running p50 ms', 'running p99 ms'];
  return [
    {
      title: 'Process driver: start latency',
      markdown:
        `${table(header, rows)}\n\n${N} runs each, one at a time, variants interleaved. \`true\`: start until the exit ` +
        `is reported (for the driver: output drained, OOM state read; the cgroup is removed after the report). ` +
        `"running": start until the first output line of \`${LONG}\`. ` +
        `Sandbox: bubblewrap ${sandbox.version ?? 'absent'}; cgroups: ${cg.version}${cg.writable ? '' : ' (not writable)'}.`,
    },
  ];
};

export default bench;
