/**
 * `corral job run|ls|get`: run code on the server in a sandbox. `job run` uploads the files,
 * streams stdout and stderr as they come (over the attach WebSocket) and exits with the
 * job's exit code.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import WebSocket from 'ws';
import { unsafePathReason } from '../../core/jobs/files.js';
import type { Runtime } from '../../core/jobs/runtimes.js';
import type { AttachFrame, JobRequest, JobSummary, JobView } from '../../core/jobs/schemas.js';
import type { ApiClient } from '../client.js';
import { apiAction, apiCommand } from '../command.js';
import { CliError, table } from '../output.js';

interface RunFlags {
  runtime: string;
  entry?: string;
  arg?: string[];
  stdin?: string;
  timeout?: string;
  output?: string;
  saveOutput?: string;
  memory?: string;
  network?: boolean;
  insecure?: boolean;
}

/** Exit codes for jobs that ended without one of their own. */
const EXIT_FOR_STATUS: Record<string, number> = { timeout: 124, memory: 137, 'output-limit': 141, killed: 137 };

/** Files as the API wants them: each under its relative path (or its base name), base64. */
async function readJobFiles(names: string[], runtime: Runtime, entry: string | undefined): Promise<JobRequest['files']> {
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

/** Streams a job's output to this process's stdout/stderr until it ends; returns the result. */
function follow(client: ApiClient, id: string, insecure: boolean): Promise<JobView> {
  const url = `${client.url.replace(/^http/, 'ws')}/api/v1/jobs/${id}/attach`;
  const ws = new WebSocket(url, { headers: client.headers(), rejectUnauthorized: !insecure });
  return new Promise((resolve, reject) => {
    let result: JobView | undefined;
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as AttachFrame;
      if (frame.type === 'stdout') process.stdout.write(frame.data);
      else if (frame.type === 'stderr') process.stderr.write(frame.data);
      else if (frame.type === 'exit') result = frame.job;
    });
    ws.on('close', () => (result ? resolve(result) : reject(new CliError('attach_failed', 'the connection closed before the job ended'))));
    ws.on('unexpected-response', (_req, res) => reject(new CliError('attach_failed', `attach refused: HTTP ${res.statusCode}`)));
    ws.on('error', (e) => reject(new CliError('attach_failed', e.message)));
  });
}

export function registerJobCommands(program: Command): void {
  const job = program.command('job').description('run code in a sandbox on the server');

  apiCommand(job, 'run <files...>', 'run files with a runtime; prints output as it comes and exits with the job’s code')
    .requiredOption('-r, --runtime <name>', 'runtime (see `corral job runtimes`)')
    .option('-e, --entry <command>', 'shell command to run instead of the runtime’s default')
    .option('-a, --arg <arg...>', 'arguments appended to the command')
    .option('--stdin <file>', 'file fed to the job’s stdin')
    .option('-t, --timeout <seconds>', 'timeout in seconds')
    .option('-m, --memory <bytes>', 'memory limit in bytes')
    .option('-o, --output <path>', 'file (relative to the job dir) to fetch after the run')
    .option('--save-output <file>', 'where to save that file locally (default: its name)')
    .option('--network', 'ask for network access (when the server allows it)')
    .action(
      apiAction(async ({ client, json, out }, names: string[], flags: RunFlags) => {
        const { runtimes } = await client.get<{ runtimes: Runtime[] }>('/runtimes');
        const runtime = runtimes.find((r) => r.name === flags.runtime);
        if (!runtime) {
          throw new CliError('unknown_runtime', `unknown runtime "${flags.runtime}"; known: ${runtimes.map((r) => r.name).join(', ')}`);
        }
        const request: JobRequest = {
          runtime: runtime.name,
          files: await readJobFiles(names, runtime, flags.entry),
          ...(flags.entry && { entry: flags.entry }),
          ...(flags.arg && { args: flags.arg }),
          ...(flags.stdin && { stdin: await readFile(flags.stdin, 'utf8') }),
          ...(flags.timeout && { timeoutSeconds: Number(flags.timeout) }),
          ...(flags.memory && { limits: { memoryBytes: Number(flags.memory) } }),
          ...(flags.output && { output: flags.output }),
          ...(flags.network && { network: true }),
        };
        let result: JobView;
        if (json) {
          result = await client.post<JobView>('/jobs', request);
          out(result, () => '');
        } else {
          const queued = await client.post<JobView>('/jobs?wait=false', request);
          result = await follow(client, queued.id, !!flags.insecure);
        }
        if (result.outputFile) {
          await writeFile(flags.saveOutput ?? result.outputFile.name, Buffer.from(result.outputFile.content, 'base64'));
        }
        if (!json && result.status !== 'ok' && result.status !== 'error') {
          process.stderr.write(`corral: job ${result.status}${result.note ? `: ${result.note}` : ''}\n`);
        } else if (!json && result.note) process.stderr.write(`corral: ${result.note}\n`);
        const ranToTheEnd = result.status === 'ok' || result.status === 'error';
        process.exitCode = ranToTheEnd ? (result.exitCode ?? 1) : (EXIT_FOR_STATUS[result.status ?? 'killed'] ?? 1);
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
