/** Runs the built `corral` binary as a child process (async: the server may live in this process). */
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { CLI, tempDir, type TestServer } from '../helpers/server.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, ...opts.env };
    // Values set to undefined in opts.env are removed, not passed as "undefined".
    for (const [k, v] of Object.entries(opts.env ?? {})) if (v === undefined) delete env[k];
    const child = spawn(process.execPath, [CLI, ...args], { env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

/**
 * A CLI home of its own (removed by the returned `cleanup`) and a `corral` that runs against
 * `server` with the admin's token.
 */
export async function cliAgainst(server: TestServer, prefix = 'corral-cli-'): Promise<{ corral: (args: string[]) => Promise<CliResult>; cleanup: () => Promise<void> }> {
  const home = await tempDir(prefix);
  const env = { XDG_CONFIG_HOME: path.join(home, 'xdg'), CORRAL_URL: server.url, CORRAL_TOKEN: server.adminToken };
  return { corral: (args) => runCli(args, { env }), cleanup: () => rm(home, { recursive: true, force: true }) };
}
