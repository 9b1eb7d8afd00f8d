#!/usr/bin/env node
/** The `corral` command: the server and a client for its API. */
import { Command } from 'commander';
import { VERSION } from '../core/version.js';
import { registerServeCommands } from './commands/serve.js';
import { runAction } from './output.js';

const program = new Command('corral')
  .description('A self-hosted process herder: run, supervise, sandbox, meter and expose processes.')
  .version(VERSION)
  .showHelpAfterError();

registerServeCommands(program);

program.parseAsync(process.argv).catch((e: unknown) => runAction.fail(e));
