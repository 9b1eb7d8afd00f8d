#!/usr/bin/env node
/**
 * The `corral` command: the server and a client for its API. Each command group lives in
 * src/cli/commands/NAME.ts and exports `registerXCommands(program)`; to add a group, import
 * it and add one line to the list below (client commands use apiCommand/apiAction from
 * ./command.ts and the ApiClient from ./client.ts). Every call loads every group's module, so
 * a group imports only commander, src/cli modules and types at the top, and loads anything
 * heavier inside its actions (see command.ts and the CLI row of docs/benchmarks.md).
 */
import { Command } from 'commander';
import { VERSION } from '../core/version.js';
import { registerAppCommands } from './commands/apps.js';
import { registerCertCommand } from './commands/cert.js';
import { registerCompletionCommand } from './commands/completion.js';
import { registerDeployCommand } from './commands/deploy.js';
import { registerDoctorCommand } from './commands/doctor.js';
import { registerGroupCommands } from './commands/group.js';
import { registerInstanceCommands } from './commands/instance.js';
import { registerJobCommands } from './commands/job.js';
import { registerKeeperCommands } from './commands/keeper.js';
import { registerLoginCommand } from './commands/login.js';
import { registerServeCommands } from './commands/serve.js';
import { registerTokenCommands } from './commands/token.js';
import { registerUserCommands } from './commands/user.js';
import { registerUsageCommands } from './commands/usage.js';
import { runAction } from './output.js';

const program = new Command('corral')
  .description('A self-hosted process herder: run, supervise, sandbox, meter and expose processes.')
  .version(VERSION)
  .showHelpAfterError()
  // Lets a command group have options of its own before its subcommands (`corral token -e …`).
  .enablePositionalOptions();

for (const register of [
  registerServeCommands,
  registerKeeperCommands,
  registerCertCommand,
  registerDoctorCommand,
  registerLoginCommand,
  registerUserCommands,
  registerGroupCommands,
  registerUsageCommands,
  registerTokenCommands,
  registerJobCommands,
  registerInstanceCommands,
  registerDeployCommand,
  registerAppCommands,
  registerCompletionCommand,
]) {
  register(program);
}

program.parseAsync(process.argv).catch((e: unknown) => runAction.fail(e));
