/** `corral completion bash|zsh|fish`: scripts written from the command tree; the bash one run in bash. */
import { execFile } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { tempDir } from '../helpers/server.js';
import { runCli } from './run-cli.js';

vi.setConfig({ testTimeout: 60_000 });

let dir: string;
let bashScript: string;
beforeAll(async () => {
  dir = await tempDir('corral-completion-');
  const r = await runCli(['completion', 'bash']);
  expect(r.code, r.stderr).toBe(0);
  bashScript = path.join(dir, 'corral.bash');
  await writeFile(bashScript, r.stdout);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** What bash offers after the words typed (the last one being completed). */
async function complete(...words: string[]): Promise<string[]> {
  const { stdout } = await promisify(execFile)('bash', [
    '-c',
    `source "$0"; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _corral; printf '%s\\n' "\${COMPREPLY[@]}"`,
    bashScript,
    'corral',
    ...words,
  ]);
  return stdout.split('\n').filter(Boolean);
}

describe('bash', () => {
  it('completes commands, subcommands and options, skipping options typed before', async () => {
    expect(await complete('ins')).toEqual(['instance']);
    expect(await complete('instances', 'o')).toEqual(['open']); // an alias leads to the same words
    expect(await complete('instance', 's')).toEqual(['show', 'start', 'stop', 'signal', 'share']);
    expect(await complete('--url', 'http://x', 'token', 're')).toEqual(['revoke']);
    expect(await complete('instance', 'share', 'web', '--i')).toEqual(['--insecure', '--idle-stop']);
    expect(await complete('instance', 'create', 'x', '-')).toContain('-m');
    expect(await complete('completion', '')).toEqual(['--help']);
  });
});

describe('zsh and fish', () => {
  it('name every command with its description', async () => {
    const zsh = await runCli(['completion', 'zsh']);
    expect(zsh.code, zsh.stderr).toBe(0);
    expect(zsh.stdout).toMatch(/^#compdef corral\n/);
    expect(zsh.stdout).toContain(`'instance share') cmds=(); opts=(`);
    expect(zsh.stdout).toContain(`'--idle-stop:stop it after this long without traffic through the proxy (0: never)`);
    const fish = await runCli(['completion', 'fish']);
    expect(fish.code, fish.stderr).toBe(0);
    expect(fish.stdout).toContain("complete -c corral -n '__fish_use_subcommand' -a 'instance' -d 'supervised long-lived workloads'");
    expect(fish.stdout).toMatch(/complete -c corral -n '__fish_seen_subcommand_from token; and not __fish_seen_subcommand_from create ls revoke inspect' -a 'revoke' -d 'revoke a token at once, by its name or id'/);
    expect(fish.stdout).toContain("complete -c corral -n '__fish_seen_subcommand_from instance; and __fish_seen_subcommand_from create' -l memory -s m -r -d 'memory limit, e.g. 512M");
  });

  it('refuses another shell', async () => {
    const r = await runCli(['completion', 'tcsh']);
    expect([r.code, r.stderr]).toEqual([1, 'bad_argument: completion scripts are for bash, zsh, fish; not "tcsh"\n']);
  });
});
