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

export async function readCredentials(env: NodeJS.ProcessEnv = process.env): Promise<Partial<Credentials>> {
  const file = credentialsFile(env);
  let stored: Partial<Credentials> = {};
  try {
    stored = JSON.parse(await readFile(file, 'utf8')) as Partial<Credentials>;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new CliError('config_invalid', `cannot read ${file}: ${(e as Error).message}`);
  }
  return {
    ...stored,
    ...(env.CORRAL_URL && { url: env.CORRAL_URL }),
    ...(env.CORRAL_TOKEN && { token: env.CORRAL_TOKEN }),
    ...(env.CORRAL_INSECURE && { insecure: /^(1|true|yes)$/i.test(env.CORRAL_INSECURE) }),
  };
}

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
