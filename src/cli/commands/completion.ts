/** `corral completion bash|zsh|fish`: a shell completion script for every command and option. */
import type { Command } from 'commander';
import { CliError, runAction } from '../output.js';

export function registerCompletionCommand(program: Command): void {
  program
    .command('completion <shell>')
    .description('print a completion script for bash, zsh or fish, e.g. eval "$(corral completion bash)"')
    .action(
      runAction.wrap(async (shell: string) => {
        const { SHELLS, completionScript } = await import('../completion.js');
        if (!(SHELLS as readonly string[]).includes(shell)) throw new CliError('bad_argument', `completion scripts are for ${SHELLS.join(', ')}; not "${shell}"`);
        process.stdout.write(completionScript(program, shell as (typeof SHELLS)[number]));
      }),
    );
}
