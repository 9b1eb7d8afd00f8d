/**
 * `corral job run|ls|get`: run code on the server in a sandbox. `job run` uploads the files,
 * streams stdout and stderr as they come (over the attach WebSocket) and exits with the
 * job's exit code.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import type { Runtime } from '../../core/jobs/runtimes.js';
import type { AttachFrame, JobRequest, JobSummary, JobView } from '../../core/jobs/schemas.js';
import type { ApiClient } from '../client.js';
import { apiAction, apiCommand } from '../command.js';
import { unitOption } from '../flags.js';
import { CliError, table } from '../output.js';
import { formatDuration, formatSize } from '../units.js';

interface RunFlags {
  runtime?: string;
  entry?: string;
  arg?: string[];
  stdin?: string;
  /** Seconds (parsed from `2s`, `500ms`… by unitOption). */
  timeout?: number;
  output?: string;
  saveOutput?: string;
  /** Bytes (parsed from `100M`…). */
  memory?: number;
  network?: boolean;
  insecure?: boolean;
}

/** Exit codes for jobs that ended without one of their own. */
const EXIT_FOR_STATUS: Record<string, number> = { timeout: 124, memory: 137, 'output-limit': 141, killed: 137 };
/** A job cancelled with Ctrl-C exits like a program stopped by SIGINT. */
const EXIT_CANCELLED = 130;

/** Extensions some runtimes' sources also use, and the runtime each names in corral's built-in set. */
const SAME_AS: Record<string, string> = { '.cc': '.cpp', '.cxx': '.cpp', '.c++': '.cpp', '.mjs': '.js', '.cjs': '.js' };
const BUILT_IN_FOR: Record<string, string> = {
  '.sh': 'sh', '.py': 'python', '.js': 'node', '.rb': 'ruby', '.tex': 'latex', '.c': 'c', '.cpp': 'cpp', '.java': 'java',
};

/**
 * The runtime for `file` when --runtime is not given: the one whose entry file has its
 * extension (main.c → c). Several (a configured python-sci beside python): the built-in one,
 * else the user must choose.
 */
export function guessRuntime(file: string, runtimes: Runtime[]): Runtime {
  const raw = path.extname(file).toLowerCase();
  const ext = SAME_AS[raw] ?? raw;
  const known = runtimes.map((r) => r.name).join(', ');
  const matches = runtimes.filter((r) => r.entryFile && path.extname(r.entryFile).toLowerCase() === ext);
  if (matches.length === 1) return matches[0]!;
  const builtIn = matches.find((r) => r.name === BUILT_IN_FOR[ext]);
  if (builtIn) return builtIn;
  if (!matches.length) {
    throw new CliError('bad_option', `--runtime: no runtime takes ${raw ? `"${raw}" files` : `"${path.basename(file)}" (no extension)`}; name one with --runtime (known: ${known})`);
  }
  throw new CliError('bad_option', `--runtime: several runtimes take "${raw}" files (${matches.map((r) => r.name).join(', ')}); name one with --runtime`);
}

/**
 * The server's "above this server's cap" refusal of -t or -m (`timeoutSeconds: at most 30 on
 * this server (got 60)`), told in the flag's terms: `-t: at most 30s on this server`.
 */
function overServerCap(e: unknown, flags: RunFlags): unknown {
  const m = e instanceof CliError && e.code === 'validation_failed' ? /^(timeoutSeconds|limits\.memoryBytes): at most (\d+(?:\.\d+)?)/.exec(e.message) : null;
  if (!m) return e;
  const max = Number(m[2]);
  return m[1] === 'timeoutSeconds'
    ? new CliError('bad_option', `${typedFlag('-t', '--timeout')}: at most ${formatDuration(max)} on this server (got ${formatDuration(flags.timeout ?? 0)})`)
    : new CliError('bad_option', `${typedFlag('-m', '--memory')}: at most ${formatSize(max)} on this server (got ${formatSize(flags.memory ?? 0)})`);
}

/** How the user spelled an option on this command line. */
const typedFlag = (short: string, long: string) => (process.argv.some((a) => a === long || a.startsWith(`${long}=`)) ? long : short);

/** Files as the API wants them: each under its relative path (or its base name), base64. */
async function readJobFiles(names: string[], runtime: Runtime, entry: string | undefined): Promise<JobRequest['files']> {
  // Loaded here, not at the top: every CLI call loads this module (see command.ts).
  const { unsafePathReason } = await import('../../core/jobs/files.js');
  const files: NonNullable<JobRequest['files']> = {};
  for (const [i, name] of names.entries()) {
    let target = unsafePathReason(name) ? path.basename(name) : name;
    // `corral job run --runtime python hello.py`: the first file is the runtime's entry file.
    if (i === 0 && !entry && runtime.entryFile && !names.some((n) => path.basename(n) === runtime.entryFile)) {
      target = runtime.entryFile;
    }
    files[target] = { content: (await readFile(name)).toString('base64'), encoding: 'base64' };
  }
  return files;
}

/**
 * Streams a job's output to this process's stdout/stderr (unless `quiet`) until it ends;
 * returns the result. Ctrl-C cancels the job (the result then says `cancelled`); a second
 * Ctrl-C leaves at once.
 */
async function follow(client: ApiClient, id: string, insecure: boolean, quiet = false): Promise<JobView> {
  let cancelling = false;
  const onInterrupt = () => {
    if (cancelling) process.exit(EXIT_CANCELLED);
    cancelling = true;
    process.stderr.write(`\ncorral: cancelling job ${id} (Ctrl-C again to leave without waiting)\n`);
    client.delete(`/jobs/${id}`).catch(() => undefined);
  };
  process.on('SIGINT', onInterrupt);
  try {
    return await attachUntilExit(client, id, insecure, quiet);
  } finally {
    process.off('SIGINT', onInterrupt);
  }
}

async function attachUntilExit(client: ApiClient, id: string, insecure: boolean, quiet: boolean): Promise<JobView> {
  const { default: WebSocket } = await import('ws');
  const url = `${client.url.replace(/^http/, 'ws')}/api/v1/jobs/${id}/attach`;
  const ws = new WebSocket(url, { headers: client.headers(), rejectUnauthorized: !insecure });
  return new Promise((resolve, reject) => {
    let result: JobView | undefined;
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as AttachFrame;
      if (frame.type === 'exit') result = frame.job;
      else if (quiet) return;
      else if (frame.type === 'stdout') process.stdout.write(frame.data);
      else if (frame.type === 'stderr') process.stderr.write(frame.data);
    });
    ws.on('close', () => (result ? resolve(result) : reject(new CliError('attach_failed', 'the connection closed before the job ended'))));
    ws.on('unexpected-response', (_req, res) => reject(new CliError('attach_failed', `attach refused: HTTP ${res.statusCode}`)));
    ws.on('error', (e) => reject(new CliError('attach_failed', e.message)));
  });
}

export function registerJobCommands(program: Command): void {
  const job = program.command('job').description('run code in a sandbox on the server');

  apiCommand(job, 'run <files...>', 'run files with a runtime; prints output as it comes and exits with the job’s code')
    .option('-r, --runtime <name>', 'runtime (see `corral job runtimes`); default: from the first file’s extension (main.c → c)')
    .option('-e, --entry <command>', 'shell command to run instead of the runtime’s default')
    .option('-a, --arg <arg...>', 'arguments appended to the command')
    .option('--stdin <file>', 'file fed to the job’s stdin')
    .addOption(unitOption('-t, --timeout <duration>', 'timeout', 'duration', 'timeoutSeconds'))
    .addOption(unitOption('-m, --memory <size>', 'memory limit', 'size', 'limits.memoryBytes'))
    .option('-o, --output <path>', 'file (relative to the job dir) to fetch after the run')
    .option('--save-output <file>', 'where to save that file locally (default: its name)')
    .option('--network', 'ask for network access (when the server allows it)')
    .action(
      apiAction(async ({ client, json, out }, names: string[], flags: RunFlags) => {
        const { runtimes } = await client.get<{ runtimes: Runtime[] }>('/runtimes');
        const runtime = flags.runtime === undefined ? guessRuntime(names[0]!, runtimes) : runtimes.find((r) => r.name === flags.runtime);
        if (!runtime) {
          throw new CliError('unknown_runtime', `--runtime: unknown runtime "${flags.runtime}"; known: ${runtimes.map((r) => r.name).join(', ')}`);
        }
        const request: JobRequest = {
          runtime: runtime.name,
          files: await readJobFiles(names, runtime, flags.entry),
          ...(flags.entry && { entry: flags.entry }),
          ...(flags.arg && { args: flags.arg }),
          ...(flags.stdin && { stdin: await readFile(flags.stdin, 'utf8') }),
          ...(flags.timeout !== undefined && { timeoutSeconds: flags.timeout }),
          ...(flags.memory !== undefined && { limits: { memoryBytes: flags.memory } }),
          ...(flags.output && { output: flags.output }),
          ...(flags.network && { network: true }),
        };
        // Queued, then followed (quietly with --json): Ctrl-C can cancel it by its id.
        const queued = await client.post<JobView>('/jobs?wait=false', request).catch((e: unknown) => {
          throw overServerCap(e, flags);
        });
        const result = await follow(client, queued.id, !!flags.insecure, json);
        if (json) out(result, () => '');
        if (result.outputFile) {
          await writeFile(flags.saveOutput ?? result.outputFile.name, Buffer.from(result.outputFile.content, 'base64'));
        }
        if (!json && result.status !== 'ok' && result.status !== 'error') {
          process.stderr.write(`corral: job ${result.status}${result.note ? `: ${result.note}` : ''}\n`);
        } else if (!json && result.note) process.stderr.write(`corral: ${result.note}\n`);
        const ranToTheEnd = result.status === 'ok' || result.status === 'error' || result.status === 'compile-error';
        if (result.note === 'cancelled') process.exitCode = EXIT_CANCELLED;
        else process.exitCode = ranToTheEnd ? (result.exitCode ?? 1) : (EXIT_FOR_STATUS[result.status ?? 'killed'] ?? 1);
      }),
    );

  apiCommand(job, 'ls', 'list your recent jobs').action(
    apiAction(async ({ client, out }) => {
      const { jobs } = await client.get<{ jobs: JobSummary[] }>('/jobs');
      out(jobs, () =>
        table(
          ['ID', 'RUNTIME', 'STATE', 'STATUS', 'EXIT', 'WALL MS', 'CREATED'],
          jobs.map((j) => [j.id, j.runtime, j.state, j.status ?? '', String(j.exitCode ?? ''), String(j.wallMs ?? ''), j.createdAt]),
        ),
      );
    }),
  );

  apiCommand(job, 'get <id>', 'show a job and its result').action(
    apiAction(async ({ client, out }, id: string) => {
      const view = await client.get<JobView>(`/jobs/${encodeURIComponent(id)}`);
      out(view, () => `${view.id} ${view.runtime} ${view.state} ${view.status ?? ''} exit=${view.exitCode ?? ''}\n${view.stdout}${view.stderr}`);
    }),
  );

  apiCommand(job, 'runtimes', 'list the runtimes this server offers').action(
    apiAction(async ({ client, out }) => {
      const { runtimes } = await client.get<{ runtimes: Runtime[] }>('/runtimes');
      out(runtimes, () => table(['NAME', 'VERSION', 'COMMAND'], runtimes.map((r) => [r.name, r.version ?? '', r.command])));
    }),
  );
}
