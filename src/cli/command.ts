/**
 * How a CLI command that talks to the server is declared. A command group file does:
 *
 *   export function registerTokenCommands(program: Command): void {
 *     const token = program.command('token').description('manage API tokens');
 *     apiCommand(token, 'revoke <id>', 'revoke a token').action(
 *       apiAction(async ({ client, out }, id: string) => {
 *         const info = await client.delete<TokenInfo>(`/tokens/${id}`);
 *         out(info, () => `revoked ${info.name}`);
 *       }),
 *     );
 *   }
 *
 * `apiCommand` adds the options every such command shares (`--json`, `-k/--insecure`,
 * `--url`); `apiAction` builds the client from them and the stored login, and reports any
 * error as `CODE: message` on stderr with exit code 1 — a refused value of a unit option
 * (flags.ts) in the terms of the flag the user typed.
 *
 * A command module is loaded on every CLI call: it imports only commander, these cli modules
 * and types at the top, and anything heavier (ws, tar, core schemas) inside its actions.
 */
import type { Command } from 'commander';
import { ApiClient } from './client.js';
import { inFlagTerms } from './flags.js';
import { print, runAction } from './output.js';

export interface CommonFlags {
  json?: boolean;
  insecure?: boolean;
  url?: string;
}

export interface ApiContext {
  client: ApiClient;
  json: boolean;
  /** Prints `value` as JSON under --json, else the text `text()` returns. */
  out(value: unknown, text: () => string): void;
}

/** Adds `--json` to a command (for commands that do not talk to the server). */
export function jsonOption(cmd: Command): Command {
  return cmd.option('--json', 'print machine-readable JSON');
}

/** Declares a subcommand of `parent` that talks to the server. */
export function apiCommand(parent: Command, nameAndArgs: string, description: string): Command {
  return jsonOption(parent.command(nameAndArgs).description(description))
    .option('-k, --insecure', 'accept a self-signed TLS certificate')
    .option('--url <url>', 'server URL (default: from `corral login` or CORRAL_URL)');
}

/**
 * Wraps a command's action: `fn` gets the context, then the command's arguments and its
 * options object, as commander passes them (without the trailing Command).
 */
export function apiAction<A extends unknown[]>(fn: (ctx: ApiContext, ...args: A) => Promise<void>) {
  return runAction.wrap(async (...commanderArgs: unknown[]) => {
    const cmd = commanderArgs[commanderArgs.length - 1] as Command;
    const flags = cmd.opts<CommonFlags>();
    const client = await ApiClient.fromCredentials({ url: flags.url, insecure: flags.insecure });
    const json = !!flags.json;
    try {
      await fn({ client, json, out: (value, text) => print(json, value, text) }, ...(commanderArgs.slice(0, -1) as A));
    } catch (e) {
      throw inFlagTerms(e, cmd);
    }
  });
}
