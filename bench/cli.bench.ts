/**
 * CLI: how long a read-only `corral` command takes from exec to exit (`instance ls`,
 * `token ls`, `instance show X`, and `--version`, which talks to no server) next to
 * `node -e 0` on the same machine in the same run. The server runs as its own process
 * (`npm run build` first). Commands are run round-robin, so a change in the machine's load
 * falls on all of them alike (BENCH_CLI_BEFORE=other/bin/corral.js adds that build's
 * `instance ls`, e.g. the commit before the CLI loaded its modules lazily); CPU time (user + sys, from /usr/bin/time) is given beside the
 * wall time because it depends far less on what else the machine is doing.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { api, ADMIN_PASSWORD, CLI, createToken, login, spawnServer, tempDir } from '../test/helpers/server.js';
import { fmt, percentile, table, type Benchmark } from './lib.js';

const N = Number(process.env.BENCH_CLI_N ?? 30);
/** Another build's bin/corral.js (e.g. an older commit's) to time `instance ls` with too. */
const BEFORE = process.env.BENCH_CLI_BEFORE;
/** What to call that build in the table, e.g. "before lazy loading (28a0cec)". */
const BEFORE_NAME = process.env.BENCH_CLI_BEFORE_NAME ?? 'the build in BENCH_CLI_BEFORE';
const TIME = '/usr/bin/time';

interface Run {
  wallMs: number;
  cpuMs: number | undefined;
}

/** Runs argv to its exit; wall time measured here, CPU time by /usr/bin/time when there is one. */
async function runTimed(argv: string[], env: NodeJS.ProcessEnv, scratch: string): Promise<Run> {
  const cpuFile = path.join(scratch, 'cpu');
  const timed = existsSync(TIME) ? [TIME, '-f', '%U %S', '-o', cpuFile, ...argv] : argv;
  const t = performance.now();
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(timed[0]!, timed.slice(1), { env, stdio: ['ignore', 'ignore', 'inherit'] });
    child.once('error', reject);
    child.once('close', resolve);
  });
  const wallMs = performance.now() - t;
  if (code !== 0) throw new Error(`${argv.join(' ')} exited ${code}`);
  let cpuMs: number | undefined;
  if (timed !== argv) {
    const [user, sys] = (await readFile(cpuFile, 'utf8')).trim().split(/\s+/).map(Number);
    cpuMs = ((user ?? NaN) + (sys ?? NaN)) * 1000;
  }
  return { wallMs, cpuMs };
}

const bench: Benchmark = async () => {
  const data = await tempDir('corral-bench-cli-');
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'corral-bench-cli-home-'));
  const server = await spawnServer(data);
  try {
    const token = await createToken(server.url, await login(server.url, 'admin', ADMIN_PASSWORD), 'bench-cli');
    const made = await api(server, token, 'POST', '/api/v1/instances', { name: 'bench', command: ['sleep', '100000'], ports: [{ name: 'web' }] });
    if (made.status !== 201) throw new Error(`create: ${made.status} ${JSON.stringify(made.body)}`);
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: scratch, XDG_CONFIG_HOME: scratch, CORRAL_URL: server.url, CORRAL_TOKEN: token };
    const node = process.execPath;
    const commands: [string, string[]][] = [
      ['node -e 0', [node, '-e', '0']],
      ['corral --version', [node, CLI, '--version']],
      ['corral instance ls', [node, CLI, 'instance', 'ls']],
      ['corral token ls', [node, CLI, 'token', 'ls']],
      ['corral instance show bench', [node, CLI, 'instance', 'show', 'bench']],
      ...(BEFORE ? ([[`corral instance ls, ${BEFORE_NAME}`, [node, BEFORE, 'instance', 'ls']]] as [string, string[]][]) : []),
    ];
    const runs = new Map<string, Run[]>(commands.map(([name]) => [name, []]));
    const loadBefore = os.loadavg()[0]!;
    for (let i = 0; i < N + 2; i++) {
      for (const [name, argv] of commands) {
        const run = await runTimed(argv, env, scratch);
        if (i >= 2) runs.get(name)!.push(run); // two rounds warm the page cache
      }
    }
    const loadAfter = os.loadavg()[0]!;
    const base = runs.get('node -e 0')!;
    const baseWall = percentile(base.map((r) => r.wallMs), 50);
    const cpuOf = (rs: Run[]) => (rs.every((r) => r.cpuMs !== undefined) ? percentile(rs.map((r) => r.cpuMs!), 50) : NaN);
    const rows = commands.map(([name]) => {
      const rs = runs.get(name)!;
      const wall = rs.map((r) => r.wallMs);
      return [
        `\`${name}\``,
        fmt(percentile(wall, 50), 0),
        fmt(percentile(wall, 90), 0),
        fmt(cpuOf(rs), 0),
        name === 'node -e 0' ? '–' : `+${fmt(percentile(wall, 50) - baseWall, 0)}`,
      ];
    });
    return [
      {
        title: 'CLI: command latency',
        markdown:
          `${N} runs of each, round-robin, against a server on 127.0.0.1 holding one instance; ` +
          `load average ${loadBefore.toFixed(1)} before and ${loadAfter.toFixed(1)} after on ${os.cpus().length} cores. ` +
          'Wall time from exec to exit; CPU is user + sys of the process.\n\n' +
          table(['command', 'median ms', 'p90 ms', 'median CPU ms', 'median over `node -e 0`'], rows) +
          '\n\nTarget: a read-only command (`instance ls`, `instance show`, `token ls`) under 300 ms on this machine. ' +
          'A call loads commander and src/cli only; the server, schemas and ws/tar/undici load inside the actions that use them ' +
          '(test/cli/startup.test.ts). Wall times grow with the load: with a load average of 13-18 on these 2 cores, ' +
          '`node -e 0` took 250-530 ms and `instance ls` 700-800 ms (170 ms of CPU; 930-1000 ms before).',
      },
    ];
  } finally {
    await server.kill('SIGTERM');
    await rm(data, { recursive: true, force: true });
    await rm(scratch, { recursive: true, force: true });
  }
};

export default bench;
