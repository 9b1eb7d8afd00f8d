/**
 * `corral keeper status|stop`: the keeper of a data directory (docs/instances.md, "Outliving
 * the manager"). Workloads outlive `corral serve` (Ctrl-C or SIGTERM lets go of them, the next
 * server re-adopts them); these say what is still running and stop all of it. They act on the
 * data directory's files, not through the API: they work while no server runs.
 */
import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { CliError, runAction, table } from '../output.js';
import { DURATION_HELP, parseDuration } from '../units.js';

interface DataFlags {
  config?: string;
  data?: string;
}

const withDataFlags = (cmd: Command): Command =>
  cmd.option('-c, --config <file>', 'config file (YAML or JSON)').option('-d, --data <dir>', 'data directory (default ./corral-data)');

/** The keeper's directory, from the same flags, file and CORRAL_* variables as `corral serve`. */
async function keeperDir(flags: DataFlags): Promise<string> {
  const { configFromFlags } = await import('../server-config.js');
  return path.join(configFromFlags({ config: flags.config, data: flags.data }).data, 'keeper');
}

/** The keeper named in DIR/pid, if that very process still runs (a reused pid is not it). */
async function runningKeeper(dir: string): Promise<{ pid: number; startTime: number } | undefined> {
  const { KEEPER_PID_FILE, parseKeeperPid } = await import('../../drivers/process/keeper-protocol.js');
  const named = parseKeeperPid(await readFile(path.join(dir, KEEPER_PID_FILE), 'utf8').catch(() => ''));
  if (!named) return undefined;
  const { isSameProcess } = await import('../../drivers/process/proc.js');
  return (await isSameProcess(named.pid, named.startTime)) ? named : undefined;
}

async function keptChildren(dir: string) {
  const { KeeperClient } = await import('../../drivers/process/keeper-client.js');
  const client = new KeeperClient(dir);
  try {
    return await client.list();
  } finally {
    client.close();
  }
}

export function registerKeeperCommands(program: Command): void {
  const keeper = program.command('keeper').description("the keeper that holds a data directory's running workloads while no server does");

  withDataFlags(keeper.command('status').description('is a keeper running, and what it keeps (held: a server reads it now)'))
    .option('--json', 'print JSON')
    .action(
      runAction.wrap(async (flags: DataFlags & { json?: boolean }) => {
        const dir = await keeperDir(flags);
        const running = await runningKeeper(dir);
        const children = running ? await keptChildren(dir) : [];
        if (flags.json) {
          process.stdout.write(`${JSON.stringify({ dir, running: !!running, pid: running?.pid ?? null, children }, null, 2)}\n`);
          return;
        }
        if (!running) {
          process.stdout.write(`no keeper runs for ${dir}: nothing outlives the server there\n`);
          return;
        }
        const lines = [`keeper ${running.pid} (${dir}) keeps ${children.length} process${children.length === 1 ? '' : 'es'}`];
        if (children.length) lines.push(table(['KEY', 'PID', 'HELD BY A SERVER'], children.map((c) => [c.key, String(c.pid), c.held ? 'yes' : 'no'])));
        process.stdout.write(`${lines.join('\n')}\n`);
      }),
    );

  withDataFlags(keeper.command('stop').description('stop every kept workload (stop signal, grace period, then SIGKILL) and the keeper'))
    .option('--force', 'even while a server holds them (it will see them exit, and may restart them)')
    .option('--timeout <duration>', `how long to wait for the keeper to exit (${DURATION_HELP})`, '60s')
    .action(
      runAction.wrap(async (flags: DataFlags & { force?: boolean; timeout: string }) => {
        const timeoutMs = parseDuration(flags.timeout, '--timeout') * 1000;
        const dir = await keeperDir(flags);
        const running = await runningKeeper(dir);
        if (!running) {
          process.stdout.write(`no keeper runs for ${dir}\n`);
          return;
        }
        const children = await keptChildren(dir);
        const held = children.filter((c) => c.held).length;
        if (held && !flags.force) {
          throw new CliError('server_running', `a server holds ${held} of the ${children.length} kept processes: stop their instances (or the server) first, or pass --force`);
        }
        const { isSameProcess } = await import('../../drivers/process/proc.js');
        process.kill(running.pid, 'SIGTERM');
        const until = Date.now() + timeoutMs;
        while (await isSameProcess(running.pid, running.startTime)) {
          if (Date.now() > until) throw new CliError('timeout', `the keeper ${running.pid} is still stopping its workloads after ${flags.timeout}`);
          await new Promise((r) => setTimeout(r, 100));
        }
        process.stdout.write(`stopped the keeper ${running.pid} and the ${children.length} process${children.length === 1 ? '' : 'es'} it kept\n`);
      }),
    );
}
