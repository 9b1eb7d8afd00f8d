/**
 * `corral login` on a terminal: asks the user name and the password, and never echoes the
 * password. The terminal is a real pty made by util-linux `script`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, CLI, startTestServer, tempDir, type TestServer } from '../helpers/server.js';

const hasScript = spawnSync('script', ['--version']).status === 0;

let server: TestServer;
let home: string;
beforeAll(async () => {
  server = await startTestServer();
  home = await tempDir('corral-prompt-');
});
afterAll(async () => {
  await server.stop();
  await rm(home, { recursive: true, force: true });
});

/** Runs a command in a pty, answering each prompt (a regexp on the output so far) in turn. */
function inTerminal(command: string, answers: [RegExp, string][], env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('script', ['-qec', command, '/dev/null'], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    let next = 0;
    const onData = (d: Buffer) => {
      output += d.toString();
      const answer = answers[next];
      if (answer && answer[0].test(output)) {
        next += 1;
        child.stdin.write(`${answer[1]}\r`);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('close', (code) => {
      child.stdin.destroy();
      resolve({ code, output });
    });
  });
}

describe.skipIf(!hasScript)('corral login on a terminal', () => {
  it('asks for the user (default admin) and a password it does not echo', async () => {
    const xdg = path.join(home, 'xdg');
    const r = await inTerminal(
      `${process.execPath} ${CLI} login ${server.url}`,
      [
        [/User \[admin\]: /, ''],
        [/Password: /, ADMIN_PASSWORD],
      ],
      { XDG_CONFIG_HOME: xdg, CORRAL_URL: '', CORRAL_TOKEN: '' },
    );
    expect(r.code, r.output).toBe(0);
    expect(r.output).toMatch(/logged in to .* as admin \(admin\)/);
    expect(r.output).not.toContain(ADMIN_PASSWORD);
    const stored = JSON.parse(await readFile(path.join(xdg, 'corral/config.json'), 'utf8')) as { url: string };
    expect(stored.url).toBe(server.url);
  });
});
