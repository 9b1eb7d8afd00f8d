/**
 * Where the CLI keeps the server it talks to: `$XDG_CONFIG_HOME/corral/config.json`
 * (default `~/.config/corral/config.json`), directory 0700, file 0600, holding
 * `{url, token, insecure}`. CORRAL_URL, CORRAL_TOKEN and CORRAL_INSECURE override it.
 */
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { CliError } from './output.js';

export interface Credentials {
  url: string;
  token: string;
  insecure: boolean;
}

export function credentialsFile(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME || path.join(homedir(), '.config');
  return path.join(base, 'corral', 'config.json');
}

/**
 * The server to talk to and the token to present. `url` (from `--url`) wins over CORRAL_URL,
 * which wins over the file. A token from the file is only sent to the server it was made for,
 * so `--url https://elsewhere` never leaks it; CORRAL_TOKEN is sent wherever it is told.
 */
export async function readCredentials(
  opts: { url?: string | undefined } = {},
  env: NodeJS.ProcessEnv = process.env,
): Promise<Partial<Credentials>> {
  const file = credentialsFile(env);
  let stored: Partial<Credentials> = {};
  try {
    stored = JSON.parse(await readFile(file, 'utf8')) as Partial<Credentials>;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new CliError('config_invalid', `cannot read ${file}: ${(e as Error).message}`);
  }
  const url = opts.url || env.CORRAL_URL || stored.url;
  const token = env.CORRAL_TOKEN || (url && stored.url && sameServer(url, stored.url) ? stored.token : undefined);
  const insecure = env.CORRAL_INSECURE ? /^(1|true|yes)$/i.test(env.CORRAL_INSECURE) : !!stored.insecure;
  return { url, token, insecure };
}

const sameServer = (a: string, b: string) => a.replace(/\/+$/, '') === b.replace(/\/+$/, '');

/** Writes atomically (temp file + rename) so a crash never leaves half a file. */
export async function writeCredentials(creds: Credentials, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const file = credentialsFile(env);
  const dir = path.dirname(file);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(creds, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, file);
  return file;
}

/** Removes the stored credentials (`corral logout`); returns the file it removed. */
export async function forgetCredentials(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const file = credentialsFile(env);
  await rm(file, { force: true });
  return file;
}
