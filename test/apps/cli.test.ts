/**
 * `corral deploy`, `releases`, `rollback`, `env` and `scale` against a live server (needs
 * `npm run build`): a deploy leaves out `.git`, `node_modules` and what `.corralignore`
 * names, updates the app on the second run, and prints why when a release fails.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { compileIgnore } from '../../src/cli/ignore.js';
import { startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import { runCli } from '../cli/run-cli.js';
import { APPS_DOMAIN, viaProxy } from './helpers.js';

vi.setConfig({ testTimeout: 120_000 });

/** Answers with the files it was deployed with and GREETING. */
const LISTING_APP = `
const fs = require('fs');
require('http').createServer((q, s) => s.end(JSON.stringify({ files: fs.readdirSync('.').sort(), sub: fs.existsSync('sub') ? fs.readdirSync('sub').sort() : [], greeting: process.env.GREETING || null, tag: fs.readFileSync('tag', 'utf8').trim() })))
  .listen(Number(process.env.PORT), '127.0.0.1');
`;

describe('.corralignore', () => {
  it('follows gitignore syntax', () => {
    const ignored = compileIgnore(['.git/', 'node_modules/', '# comment', '*.log', '!keep.log', '/top-only', 'build/', 'docs/**/*.tmp', 'a?c']);
    const cases: [string, boolean, boolean][] = [
      ['.git', true, true],
      ['.git/config', false, true],
      ['src/node_modules/x/index.js', false, true],
      ['debug.log', false, true],
      ['deep/dir/debug.log', false, true],
      ['keep.log', false, false],
      ['top-only', false, true],
      ['sub/top-only', false, false],
      ['build', true, true],
      ['build', false, false],
      ['src/build/out.js', false, true],
      ['docs/a/b/x.tmp', false, true],
      ['docs/x.tmp', false, true],
      ['x.tmp', false, false],
      ['abc', false, true],
      ['abbc', false, false],
      ['server.js', false, false],
    ];
    for (const [p, dir, expected] of cases) expect(ignored(p, dir), p).toBe(expected);
  });
});

describe('corral deploy and the app commands', () => {
  let server: TestServer;
  let home: string;
  let corral: (args: string[]) => ReturnType<typeof runCli>;
  beforeAll(async () => {
    server = await startTestServer({ proxy: { baseDomain: APPS_DOMAIN }, apps: { drainSeconds: 0 } });
    home = await tempDir('corral-cli-apps-');
    const env = { XDG_CONFIG_HOME: path.join(home, 'xdg'), CORRAL_URL: server.url, CORRAL_TOKEN: server.adminToken };
    corral = (args) => runCli(args, { env });
  });
  afterAll(async () => {
    await server.stop();
    await rm(home, { recursive: true, force: true });
  });

  const files = async () => JSON.parse((await viaProxy(server, server.adminToken, 'admin', 'myapp')).body);

  it('deploys without --port (PORT comes by itself), honours .corralignore, and updates on the next deploy', async () => {
    const dir = path.join(home, 'myapp');
    for (const d of ['.git', 'node_modules/dep', 'sub', 'logs']) await mkdir(path.join(dir, d), { recursive: true });
    await writeFile(path.join(dir, 'Procfile'), 'web: node server.js\n');
    await writeFile(path.join(dir, 'server.js'), LISTING_APP);
    await writeFile(path.join(dir, 'tag'), 'one\n');
    await writeFile(path.join(dir, '.git/HEAD'), 'ref\n');
    await writeFile(path.join(dir, 'node_modules/dep/index.js'), '');
    await writeFile(path.join(dir, 'secret.env'), 'X=1\n');
    await writeFile(path.join(dir, 'logs/today.log'), 'x\n');
    await writeFile(path.join(dir, 'sub/keep.txt'), 'x\n');
    await writeFile(path.join(dir, 'sub/drop.tmp'), 'x\n');
    await writeFile(path.join(dir, '.corralignore'), '# local only\n*.env\nlogs/\n**/*.tmp\n');

    const r = await corral(['deploy', dir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^myapp v1 is serving \(web=1\) at http:\/\/myapp--admin\.apps\.test:\d+\//);
    expect(r.stderr).toMatch(/uploading \[#+\] 100%/);
    const one = await files();
    expect(one.files).toEqual(['.corralignore', 'Procfile', 'server.js', 'sub', 'tag']);
    expect(one.sub).toEqual(['keep.txt']);

    await writeFile(path.join(dir, 'tag'), 'two\n');
    const again = await corral(['deploy', dir, '--port', 'web', '-m', 'second']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^myapp v2 is serving/);
    expect((await files()).tag).toBe('two');

    const releases = await corral(['releases', 'myapp']);
    expect(releases.code, releases.stderr).toBe(0);
    expect(releases.stdout).toMatch(/v2\s+active\s+\S+\s+admin\s+second/);
    expect(releases.stdout).toMatch(/v1\s+superseded/);
  });

  it('env set and unset make releases that reach the app; rollback goes back; scale refuses bad counts', async () => {
    const set = await corral(['env', 'set', 'myapp', 'GREETING=hello there']);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toMatch(/set GREETING; myapp v3 is serving/);
    expect((await files()).greeting).toBe('hello there');
    const shown = await corral(['env', 'myapp']);
    expect(shown.stdout).toBe('GREETING=hello there\n');
    const unset = await corral(['env', 'unset', 'myapp', 'GREETING']);
    expect(unset.code, unset.stderr).toBe(0);
    expect((await files()).greeting).toBe(null);

    const back = await corral(['rollback', 'myapp', 'v1']);
    expect(back.code, back.stderr).toBe(0);
    expect(back.stdout).toMatch(/myapp v5 is serving .*\(rollback to v1\)/);
    expect((await files()).tag).toBe('one');

    const bad = await corral(['scale', 'myapp', 'web=-1']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^validation_failed: body\.web/);
  });

  it('a failed deploy prints the state, the exit code and the last log lines', async () => {
    const dir = path.join(home, 'crashy');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'Procfile'), 'web: echo "cannot find config.yml" >&2; exit 4\n');
    const r = await corral(['deploy', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/state: +backoff/);
    expect(r.stderr).toMatch(/exit code: 4/);
    expect(r.stderr).toMatch(/log lines:\n(.|\n)*cannot find config\.yml/);
    expect(r.stderr).toMatch(/deploy_failed: release v1 failed: crashy\.web\.1 crash-looping/);
    // The name is the app's now: a fixed deploy goes over it.
    await writeFile(path.join(dir, 'Procfile'), 'web: node server.js\n');
    await writeFile(path.join(dir, 'server.js'), LISTING_APP);
    await writeFile(path.join(dir, 'tag'), 'fixed\n');
    const fixed = await corral(['deploy', dir]);
    expect(fixed.code, fixed.stderr).toBe(0);
    expect(fixed.stdout).toMatch(/^crashy v2 is serving/);
  });
});
