/**
 * `corral instance create|ls|show|start|stop|restart|rm|logs|attach`: supervised workloads
 * on the server. `instance` takes an instance's id, its name, or (admins) `owner:name`.
 * `attach` is interactive: the terminal's input goes to the instance until Ctrl-].
 */
import type { Command } from 'commander';
import { Agent, request, type Dispatcher } from 'undici';
import WebSocket from 'ws';
import type { Instance, InstanceSpecInput } from '../../core/instances/spec.js';
import type { ApiClient } from '../client.js';
import { apiAction, apiCommand } from '../command.js';
import { CliError, table } from '../output.js';

/** Ctrl-]: what telnet and docker use to detach. */
const DETACH_KEY = 0x1d;
/** After piped input ends, output is still printed until it has been quiet this long. */
const QUIET_AFTER_EOF_MS = 1000;

interface CreateFlags {
  shell?: string;
  sourceUrl?: string;
  process?: string;
  env?: string[];
  port?: string[];
  memory?: string;
  cpus?: string;
  pids?: string;
  restart?: InstanceSpecInput['restart'];
  stopSignal?: InstanceSpecInput['stopSignal'];
  stopGrace?: string;
  driver?: string;
  image?: string;
}

const num = (flag: string, v: string | undefined) => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new CliError('bad_option', `${flag} needs a number, got "${v}"`);
  return n;
};

/** The spec fields the create flags and `deploy` share. */
export function specFromFlags(name: string, flags: CreateFlags): InstanceSpecInput {
  const env: Record<string, string> = {};
  for (const kv of flags.env ?? []) {
    const eq = kv.indexOf('=');
    if (eq < 1) throw new CliError('bad_option', `--env needs KEY=VALUE, got "${kv}"`);
    env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  const limits = {
    memoryBytes: num('--memory', flags.memory),
    cpus: num('--cpus', flags.cpus),
    pids: num('--pids', flags.pids),
  };
  const spec: InstanceSpecInput = { name };
  if (Object.keys(env).length) spec.env = env;
  if (flags.port?.length) spec.ports = flags.port.map((p) => ({ name: p }));
  if (Object.values(limits).some((v) => v !== undefined)) spec.limits = JSON.parse(JSON.stringify(limits)) as typeof limits;
  if (flags.restart) spec.restart = flags.restart;
  if (flags.stopSignal) spec.stopSignal = flags.stopSignal;
  if (flags.stopGrace !== undefined) spec.stopGraceSeconds = num('--stop-grace', flags.stopGrace);
  if (flags.process) spec.process = flags.process;
  if (flags.driver) spec.driver = flags.driver;
  if (flags.image) spec.image = flags.image;
  return spec;
}

/** Options shared by `instance create` and `deploy`. */
export function withSpecOptions(cmd: Command): Command {
  return cmd
    .option('-e, --env <KEY=VALUE...>', 'environment variables')
    .option('-p, --port <name...>', 'named ports; each gets a host port (PORT = the first, PORT_<NAME> each)')
    .option('--memory <bytes>', 'memory limit in bytes')
    .option('--cpus <n>', 'CPU share in cores')
    .option('--pids <n>', 'most processes at once')
    .option('--restart <policy>', 'always, on-failure or never (default always)')
    .option('--stop-signal <signal>', 'signal that asks it to stop (default SIGTERM)')
    .option('--stop-grace <seconds>', 'seconds between the stop signal and SIGKILL (default 10)')
    .option('--driver <name>', "driver that runs it, e.g. docker (default: the server's)")
    .option('--image <image>', 'container image (container drivers; must be on the allow-list)');
}

function describe(i: Instance): string {
  const lines = [
    `${i.owner}:${i.name}  ${i.id}`,
    `state:    ${i.state} (desired ${i.desiredState})`,
    `what:     ${i.spec.command ? JSON.stringify(i.spec.command) : i.spec.shell ?? `${JSON.stringify(i.spec.source)} process ${i.spec.process}`}`,
    `restarts: ${i.restartCount} (policy ${i.spec.restart ?? 'always'})`,
  ];
  if (i.ports.length) lines.push(`ports:    ${i.ports.map((p) => `${p.name}=127.0.0.1:${p.hostPort}`).join(' ')}`);
  if (i.exitCode !== null || i.exitSignal) lines.push(`exit:     ${i.exitSignal ?? i.exitCode}`);
  if (i.lastError) lines.push(`error:    ${i.lastError}`);
  return lines.join('\n');
}

/** A raw streaming request (logs -f) with the client's auth; a CliError for error replies. */
export async function streamRequest(client: ApiClient, path: string, insecure: boolean): Promise<Dispatcher.ResponseData> {
  const dispatcher = insecure ? new Agent({ connect: { rejectUnauthorized: false } }) : undefined;
  let res: Dispatcher.ResponseData;
  try {
    res = await request(`${client.url}/api/v1${path}`, { headers: client.headers(), ...(dispatcher && { dispatcher }) });
  } catch (e) {
    throw new CliError('unreachable', `cannot reach ${client.url}: ${(e as Error).message}`);
  }
  if (res.statusCode >= 400) {
    const body = (await res.body.json().catch(() => ({}))) as { error?: { code: string; message: string } };
    throw new CliError(body.error?.code ?? `http_${res.statusCode}`, body.error?.message ?? `the server answered ${res.statusCode}`);
  }
  return res;
}

/** Connects stdin/stdout to the instance until Ctrl-] (or the instance goes away). */
function attach(client: ApiClient, ref: string, insecure: boolean): Promise<void> {
  const url = `${client.url.replace(/^http/, 'ws')}/api/v1/instances/${encodeURIComponent(ref)}/attach?streams=1`;
  const ws = new WebSocket(url, { headers: client.headers(), rejectUnauthorized: !insecure });
  const tty = process.stdin.isTTY;
  let inputEnded = false;
  const quiet = setTimeout(() => inputEnded && ws.close(), QUIET_AFTER_EOF_MS);
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(quiet);
      if (tty) process.stdin.setRawMode(false);
      process.stdin.pause();
      resolve();
    };
    ws.on('open', () => {
      if (tty) {
        process.stdin.setRawMode(true);
        process.stderr.write('attached; detach with Ctrl-]\r\n');
      }
      process.stdin.on('data', (chunk: Buffer) => {
        const at = chunk.indexOf(DETACH_KEY);
        if (at !== -1) {
          if (at > 0) ws.send(chunk.subarray(0, at).toString());
          ws.close();
          return;
        }
        // A raw terminal sends CR for Enter; programs reading lines want LF.
        ws.send(tty ? chunk.toString().replace(/\r/g, '\n') : chunk.toString());
      });
      process.stdin.on('end', () => {
        inputEnded = true;
        quiet.refresh();
      });
      process.stdin.resume();
    });
    ws.on('message', (data) => {
      if (inputEnded) quiet.refresh();
      const { stream, line } = JSON.parse(data.toString()) as { stream: string; line: string };
      const nl = tty ? '\r\n' : '\n';
      (stream === 'stderr' ? process.stderr : process.stdout).write(`${line}${nl}`);
    });
    ws.on('close', done);
    ws.on('unexpected-response', (req, res) => {
      req.destroy();
      reject(new CliError(res.statusCode === 404 ? 'instance_not_found' : 'attach_failed', `attach refused: HTTP ${res.statusCode}`));
    });
    ws.on('error', (e) => reject(new CliError('attach_failed', e.message)));
  });
}

export function registerInstanceCommands(program: Command): void {
  const inst = program.command('instance').alias('instances').description('supervised long-lived workloads');

  withSpecOptions(apiCommand(inst, 'create <name> [command...]', 'create and start an instance running COMMAND (argv)'))
    .option('-s, --shell <command>', 'run a shell command instead of an argv')
    .option('--source-url <url>', 'run a Procfile app from an archive at this URL')
    .option('--process <type>', 'Procfile process type (default web)')
    .action(
      apiAction(async ({ client, out }, name: string, command: string[], flags: CreateFlags) => {
        const spec = specFromFlags(name, flags);
        if (command.length) spec.command = command;
        if (flags.shell) spec.shell = flags.shell;
        if (flags.sourceUrl) spec.source = { url: flags.sourceUrl };
        const created = await client.post<Instance>('/instances', spec);
        out(created, () => describe(created));
      }),
    );

  apiCommand(inst, 'ls', 'list your instances (all, for admins)').action(
    apiAction(async ({ client, out }) => {
      const { instances } = await client.get<{ instances: Instance[] }>('/instances');
      out(instances, () =>
        table(
          ['NAME', 'OWNER', 'STATE', 'RESTARTS', 'PORTS', 'ID'],
          instances.map((i) => [i.name, i.owner, i.state, String(i.restartCount), i.ports.map((p) => `${p.name}:${p.hostPort}`).join(','), i.id]),
        ),
      );
    }),
  );

  apiCommand(inst, 'show <instance>', 'show an instance').action(
    apiAction(async ({ client, out }, ref: string) => {
      const i = await client.get<Instance>(`/instances/${encodeURIComponent(ref)}`);
      out(i, () => describe(i));
    }),
  );

  for (const action of ['start', 'stop', 'restart'] as const) {
    apiCommand(inst, `${action} <instance>`, `${action} an instance`).action(
      apiAction(async ({ client, out }, ref: string) => {
        const i = await client.post<Instance>(`/instances/${encodeURIComponent(ref)}/${action}`);
        out(i, () => `${i.name}: ${i.state}`);
      }),
    );
  }

  apiCommand(inst, 'rm <instance>', 'stop and delete an instance and its files').action(
    apiAction(async ({ client, out }, ref: string) => {
      await client.delete(`/instances/${encodeURIComponent(ref)}`);
      out({ deleted: ref }, () => `deleted ${ref}`);
    }),
  );

  apiCommand(inst, 'logs <instance>', 'print the output of an instance')
    .option('-f, --follow', 'keep printing new output')
    .option('-n, --tail <lines>', 'how many of the last lines (default 100)')
    .option('--since <time>', 'only lines at or after this ISO time')
    .action(
      apiAction(async ({ client, json }, ref: string, flags: { follow?: boolean; tail?: string; since?: string; insecure?: boolean }) => {
        const q = new URLSearchParams({ format: json ? 'ndjson' : 'text' });
        if (flags.follow) q.set('follow', 'true');
        if (flags.tail !== undefined) q.set('tail', String(num('--tail', flags.tail)));
        if (flags.since) q.set('since', flags.since);
        const res = await streamRequest(client, `/instances/${encodeURIComponent(ref)}/logs?${q}`, !!flags.insecure);
        for await (const chunk of res.body) process.stdout.write(chunk as Buffer);
      }),
    );

  apiCommand(inst, 'attach <instance>', 'connect your terminal to the instance (detach: Ctrl-])').action(
    apiAction(async ({ client }, ref: string, flags: { insecure?: boolean }) => {
      await attach(client, ref, !!flags.insecure);
    }),
  );
}
