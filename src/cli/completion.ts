/**
 * Shell completion scripts for bash, zsh and fish, written from the command tree commander
 * holds, so a new command or option completes without anyone editing a script. Each script
 * finds the command path typed so far (`instance share`) among the known paths, skipping
 * options, and offers that command's subcommands and options.
 */
import type { Command } from 'commander';

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

interface Node {
  /** `instance share`; '' for corral itself. */
  path: string;
  cmd: Command;
}

interface Word {
  word: string;
  description: string;
}

/** Every command below `program`, aliases included as paths of their own. */
function walk(cmd: Command, path = ''): Node[] {
  const nodes: Node[] = [{ path, cmd }];
  for (const sub of cmd.commands) {
    if ((sub as Command & { _hidden?: boolean })._hidden) continue;
    for (const name of [sub.name(), ...sub.aliases()]) nodes.push(...walk(sub, path ? `${path} ${name}` : name));
  }
  return nodes;
}

/** What can follow a command: its subcommands, then its options (long and short). */
function wordsOf(cmd: Command): { commands: Word[]; options: Word[] } {
  const commands = cmd.commands
    .filter((c) => !(c as Command & { _hidden?: boolean })._hidden)
    .map((c) => ({ word: c.name(), description: c.description() }));
  const options: Word[] = [];
  for (const o of cmd.options) {
    if (o.hidden) continue;
    for (const flag of [o.long, o.short]) if (flag) options.push({ word: flag, description: o.description });
  }
  options.push({ word: '--help', description: 'show help' });
  return { commands, options };
}

const sq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
/** The first line of a description, short enough for a completion menu. */
const short = (s: string) => s.split('\n')[0]!.slice(0, 80);

/**
 * The part bash and zsh share: walk the typed `words`, keeping in `$var` the longest known
 * command path (options and arguments match none and are skipped), then run the `case` arm
 * that `arm` writes for that path (setting the words to offer).
 */
function pathSwitch(program: Command, v: string, words: string, arm: (w: ReturnType<typeof wordsOf>) => string): string {
  const nodes = walk(program);
  const known = nodes.filter((n) => n.path).map((n) => sq(n.path));
  return `  for w in ${words}; do
    case "\${${v}:+$${v} }$w" in
      ${known.join('|')}) ${v}="\${${v}:+$${v} }$w" ;;
    esac
  done
  case "$${v}" in
${nodes.map((n) => `    ${sq(n.path)}) ${arm(wordsOf(n.cmd))} ;;`).join('\n')}
  esac`;
}

function bash(program: Command): string {
  const arm = ({ commands, options }: ReturnType<typeof wordsOf>) =>
    `words=${sq([...commands, ...options].map((w) => w.word).join(' '))}`;
  return `# corral completion for bash. Load it with: eval "$(corral completion bash)"
# (or save it as /etc/bash_completion.d/corral)
_corral() {
  local cur=\${COMP_WORDS[COMP_CWORD]} path= w words=
${pathSwitch(program, 'path', '"${COMP_WORDS[@]:1:COMP_CWORD-1}"', arm)}
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _corral corral
`;
}

function zsh(program: Command): string {
  const entry = (w: Word) => sq(`${w.word.replace(/:/g, '\\:')}:${short(w.description)}`);
  const arm = ({ commands, options }: ReturnType<typeof wordsOf>) =>
    `cmds=(${commands.map(entry).join(' ')}); opts=(${options.map(entry).join(' ')})`;
  return `#compdef corral
# corral completion for zsh. Load it with: eval "$(corral completion zsh)" (after compinit),
# or save it as _corral in a directory on your $fpath.
_corral() {
  local p= w
  local -a cmds opts
${pathSwitch(program, 'p', '${words[2,CURRENT-1]}', arm)}
  if [[ $PREFIX == -* ]]; then
    _describe -t options 'option' opts
  else
    _describe -t commands 'command' cmds || _files
  fi
}
compdef _corral corral
`;
}

function fish(program: Command): string {
  const nodes = walk(program);
  const lines = [
    '# corral completion for fish. Load it with: corral completion fish | source',
    '# (or save it as ~/.config/fish/completions/corral.fish)',
    'complete -c corral -f',
  ];
  for (const n of nodes) {
    const parts = n.path ? n.path.split(' ') : [];
    const { commands } = wordsOf(n.cmd);
    // This command's words are offered once its path is typed and none of its subcommands is.
    const seen = parts.map((p) => `__fish_seen_subcommand_from ${p}`);
    const notDeeper = commands.length ? [`not __fish_seen_subcommand_from ${commands.map((c) => c.word).join(' ')}`] : [];
    const here = parts.length ? [...seen, ...notDeeper] : commands.length ? ['__fish_use_subcommand'] : [];
    const cond = here.length ? ` -n ${sq(here.join('; and '))}` : '';
    for (const c of commands) lines.push(`complete -c corral${cond} -a ${sq(c.word)} -d ${sq(short(c.description))}`);
    const optCond = parts.length ? ` -n ${sq([...seen, ...notDeeper].join('; and '))}` : ' -n __fish_use_subcommand';
    for (const o of n.cmd.options) {
      if (o.hidden) continue;
      const flags = [o.long && `-l ${o.long.slice(2)}`, o.short && `-s ${o.short.slice(1)}`].filter(Boolean).join(' ');
      lines.push(`complete -c corral${optCond} ${flags}${o.required || o.optional ? ' -r' : ''} -d ${sq(short(o.description))}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** The completion script for `shell`, covering every command `program` has. */
export function completionScript(program: Command, shell: Shell): string {
  return { bash, zsh, fish }[shell](program);
}
