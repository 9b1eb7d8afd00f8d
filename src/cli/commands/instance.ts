/**
 * `corral instance create|ls|show|start|stop|restart|signal|rm|logs|attach` (and, from
 * instance-proxy.ts, `share|url|open`): supervised workloads on the server. `instance` takes
 * an instance's id, its name, or (admins) `owner:name`. `attach` is interactive: the
 * terminal's input goes to the instance until Ctrl-].
 */
import type { Command } from 'commander';
import type { Instance, InstanceSpecInput } from '../../core/instances/spec.js';
import { apiAction, apiCommand } from '../command.js';
import { unitOption } from '../flags.js';
import { describeInstance } from '../instance-text.js';
import { CliError, table } from '../output.js';
import { parseDuration } from '../units.js';
import { registerInstanceProxyCommands } from './instance-proxy.js';

interface CreateFlags {
  shell?: string;
  sourceUrl?: string;
  process?: string;
  env?: string[];
  port?: string[];
  memory?: number;
  cpus?: number;
  pids?: number;
  disk?: number;
  restart?: InstanceSpecInput['restart'];
  stopSignal?: InstanceSpecInput['stopSignal'];
  stopGrace?: number;
  driver?: string;
  image?: string;
}

const instancePath = (ref: string) => `/instances/${encodeURIComponent(ref)}`;

/** The spec fields the create flags and `deploy` share. */
export function specFromFlags(name: string, flags: CreateFlags): InstanceSpecInput {
  const env: Record<string, string> = {};
  for (const kv of flags.env ?? []) {
    const eq = kv.indexOf('=');
    if (eq < 1) throw new CliError('bad_input', `--env needs KEY=VALUE, got "${kv}"`);
    env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  const limits = { memoryBytes: flags.memory, cpus: flags.cpus, pids: flags.pids, diskBytes: flags.disk };
  const spec: InstanceSpecInput = { name };
  if (Object.keys(env).length) spec.env = env;
  if (flags.port?.length) spec.ports = flags.port.map((p) => ({ name: p }));
  if (Object.values(limits).some((v) => v !== undefined)) spec.limits = JSON.parse(JSON.stringify(limits)) as typeof limits;
  if (flags.restart) spec.restart = flags.restart;
  if (flags.stopSignal) spec.stopSignal = flags.stopSignal;
  if (flags.stopGrace !== undefined) spec.stopGraceSeconds = flags.stopGrace;
  if (flags.process) spec.process = flags.process;
  if (flags.driver) spec.driver = flags.driver;
  if (flags.image) spec.image = flags.image;
  return spec;
}

/**
 * Options shared by `instance create` and `deploy`; `memoryFlags` is `-m, --memory` where -m is
 * free. `fields` prefixes are where the API body takes the spec (deploy: `settings.`).
 */
export function withSpecOptions(cmd: Command, opts: { memoryFlags?: string; prefix?: string } = {}): Command {
  const at = (field: string) => `${opts.prefix ?? ''}${field}`;
  return cmd
    .option('-e, --env <KEY=VALUE...>', 'environment variables')
    .option('-p, --port <name...>', 'named ports; each gets a host port (PORT = the first, PORT_<NAME> each)')
    .addOption(unitOption(`${opts.memoryFlags ?? '--memory'} <size>`, 'memory limit', 'size', at('limits.memoryBytes')))
    .addOption(unitOption('--cpus <n>', 'CPU share in cores, e.g. 0.5', 'number', at('limits.cpus')))
    .addOption(unitOption('--pids <n>', 'most processes at once', 'count', at('limits.pids')))
    .addOption(unitOption('--disk <size>', 'disk limit of its files', 'size', at('limits.diskBytes')))
    .option('--restart <policy>', 'always, on-failure or never (default always)')
    .option('--stop-signal <signal>', 'signal that asks it to stop (default SIGTERM)')
    .addOption(unitOption('--stop-grace <duration>', 'time between the stop signal and SIGKILL (default 10s)', 'seconds', at('stopGraceSeconds')))
    .option('--driver <name>', "driver that runs it, e.g. docker (default: the server's)")
    .option('--image <image>', 'container image (container drivers; must be on the allow-list)');
}

/** `HUP`, `sighup`, `SIGHUP` → `SIGHUP`, checked against the signals the API takes. */
async function signalName(text: string): Promise<string> {
  const { SIGNALS } = await import('../../core/instances/spec.js');
  const name = text.toUpperCase().replace(/^(SIG)?/, 'SIG');
  if (!(SIGNALS as readonly string[]).includes(name)) throw new CliError('bad_argument', `unknown signal "${text}"; one of: ${SIGNALS.join(', ')}`);
  return name;
}

/** `--since 5m` (that long ago) or an ISO time, as the ISO time the logs API takes. */
function sinceTime(text: string): string {
  if (/^\d{4}-\d\d-\d\d/.test(text)) return text;
  return new Date(Date.now() - parseDuration(text, '--since') * 1000).toISOString();
}

export function registerInstanceCommands(program: Command): void {
  const inst = program.command('instance').alias('instances').description('supervised long-lived workloads');

  withSpecOptions(apiCommand(inst, 'create <name> [command...]', 'create and start an instance running COMMAND (argv)'), { memoryFlags: '-m, --memory' })
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
        out(created, () => describeInstance(created));
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

  apiCommand(inst, 'show <instance>', 'show an instance: state, what it runs, ports, limits, restarts (all fields: --json)').action(
    apiAction(async ({ client, out }, ref: string) => {
      const i = await client.get<Instance>(instancePath(ref));
      out(i, () => describeInstance(i));
    }),
  );

  for (const action of ['start', 'stop', 'restart'] as const) {
    apiCommand(inst, `${action} <instance>`, `${action} an instance`).action(
      apiAction(async ({ client, out }, ref: string) => {
        const i = await client.post<Instance>(`${instancePath(ref)}/${action}`);
        out(i, () => `${i.name}: ${i.state}`);
      }),
    );
  }

  apiCommand(inst, 'signal <instance> <signal>', 'send a signal (HUP, USR1, SIGTERM, …) to the running instance').action(
    apiAction(async ({ client, out }, ref: string, signal: string) => {
      const name = await signalName(signal);
      const i = await client.post<Instance>(`${instancePath(ref)}/signal`, { signal: name });
      out(i, () => `sent ${name} to ${i.name} (${i.state})`);
    }),
  );

  apiCommand(inst, 'rm <instance>', 'stop and delete an instance and its files').action(
    apiAction(async ({ client, out }, ref: string) => {
      await client.delete(instancePath(ref));
      out({ deleted: ref }, () => `deleted ${ref}`);
    }),
  );

  apiCommand(inst, 'logs <instance>', 'print the output of an instance')
    .option('-f, --follow', 'keep printing new output')
    .addOption(unitOption('-n, --tail <lines>', 'how many of the last lines (default 100)', 'count', 'tail'))
    .option('--since <time>', 'only lines from this long ago (5m, 2h) or since this ISO time')
    .action(
      apiAction(async ({ client, json }, ref: string, flags: { follow?: boolean; tail?: number; since?: string }) => {
        const q = new URLSearchParams({ format: json ? 'ndjson' : 'text' });
        if (flags.follow) q.set('follow', 'true');
        if (flags.tail !== undefined) q.set('tail', String(flags.tail));
        if (flags.since) q.set('since', sinceTime(flags.since));
        const res = await client.stream(`${instancePath(ref)}/logs?${q}`);
        for await (const chunk of res) process.stdout.write(chunk as Buffer);
      }),
    );

  apiCommand(inst, 'attach <instance>', 'connect your terminal to the instance (detach: Ctrl-])').action(
    apiAction(async ({ client }, ref: string) => {
      const { attach } = await import('../attach.js');
      await attach(client, ref);
    }),
  );

  registerInstanceProxyCommands(inst);
}
