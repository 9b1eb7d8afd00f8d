/**
 * What a CLI call loads: every call loads every command group's module (src/cli/main.ts), so
 * those modules must leave the server, the schemas and HTTP/WebSocket/archive libraries to
 * the actions that need them. The time this saves is in docs/benchmarks.md (CLI).
 */
import { execFile } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CLI, ROOT, tempDir } from '../helpers/server.js';

vi.setConfig({ testTimeout: 60_000 });

let dir: string;
let hook: string;
beforeAll(async () => {
  dir = await tempDir('corral-cli-startup-');
  hook = path.join(dir, 'hook.mjs');
  // A module loader hook that prints every module URL the CLI loads, one per line, on stderr.
  const hooks = `export async function load(url, context, next) { process._rawDebug('loaded ' + url); return next(url, context); }`;
  await writeFile(hook, `import { register } from 'node:module';\nregister(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)});\n`);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** `/…/node_modules/@scope/name/lib/x.js` → `@scope/name`. */
function packageOf(url: string): string {
  const [first, second] = url.split('/node_modules/').pop()!.split('/');
  return first!.startsWith('@') ? `${first}/${second}` : first!;
}

/** The packages (node_modules/NAME) and corral modules (dist/…) that `corral ARGS` loads. */
async function loaded(args: string[]): Promise<{ packages: string[]; modules: string[]; stderr: string }> {
  const env = { ...process.env, XDG_CONFIG_HOME: dir, CORRAL_URL: 'http://127.0.0.1:1', CORRAL_TOKEN: 'not-a-token' };
  const stderr = await new Promise<string>((resolve) =>
    execFile(process.execPath, ['--import', pathToFileURL(hook).href, CLI, ...args], { env }, (_e, _out, err) => resolve(err)),
  );
  const urls = stderr.split('\n').filter((l) => l.startsWith('loaded file://')).map((l) => l.slice('loaded file://'.length));
  const root = `${ROOT}/`;
  const packages = [...new Set(urls.filter((u) => u.includes('/node_modules/')).map(packageOf))];
  const modules = urls.filter((u) => u.startsWith(root) && !u.includes('/node_modules/')).map((u) => u.slice(root.length));
  return { packages, modules, stderr };
}

describe('a CLI call', () => {
  it.each([[['--version']], [['instance', 'ls']], [['token', 'ls']], [['instance', 'show', 'web']]])('corral %j loads commander and src/cli only', async (args) => {
    const { packages, modules, stderr } = await loaded(args);
    if (args[0] !== '--version') expect(stderr).toMatch(/unreachable: cannot reach http:\/\/127\.0\.0\.1:1/);
    expect(packages).toEqual(['commander']);
    const outside = modules.filter((m) => !m.startsWith('dist/cli/') && m !== 'bin/corral.js');
    // Plain lists and the errors catalogue, which import nothing.
    expect(outside.sort()).toEqual(['dist/core/accounts/scopes.js', 'dist/core/credits/groupings.js', 'dist/core/errors.js', 'dist/core/version.js']);
  });
});
