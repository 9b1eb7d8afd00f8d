/** `corral instance …` and `corral deploy` against a live server (needs `npm run build`). */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import { runCli } from '../cli/run-cli.js';
import { waitForState } from './helpers.js';

vi.setConfig({ testTimeout: 120_000 });

describe('corral instance and deploy', () => {
  let server: TestServer;
  let home: string;
  let corral: (args: string[], input?: string) => ReturnType<typeof runCli>;
  beforeAll(async () => {
    server = await startTestServer();
    home = await tempDir('corral-cli-inst-');
    const env = { XDG_CONFIG_HOME: path.join(home, 'xdg'), CORRAL_URL: server.url, CORRAL_TOKEN: server.adminToken };
    corral = (args, input) => runCli(args, { env, ...(input !== undefined && { input }) });
  });
  afterAll(async () => {
    await server.stop();
    await rm(home, { recursive: true, force: true });
  });

  it('create, ls, show, logs, stop, rm', async () => {
    const created = await corral(['instance', 'create', 'hello', '--port', 'web', '-e', 'WHO=cli', '--shell', 'echo "hi $WHO on $PORT"; sleep 1000']);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/admin:hello/);
    expect(created.stdout).toMatch(/state: +running/);

    const ls = await corral(['instance', 'ls']);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toMatch(/^NAME +OWNER +STATE/);
    expect(ls.stdout).toMatch(/hello +admin +running/);

    const json = await corral(['instance', 'show', 'hello', '--json']);
    const shown = JSON.parse(json.stdout) as { id: string; ports: { hostPort: number }[] };
    await new Promise((r) => setTimeout(r, 300));
    const logs = await corral(['instance', 'logs', 'hello']);
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toContain(`hi cli on ${shown.ports[0]!.hostPort}`);

    const argv = await corral(['instance', 'create', 'argv', '--restart', 'never', '--', 'sh', '-c', 'echo argv-ok']);
    expect(argv.code, argv.stderr).toBe(0);

    const stop = await corral(['instance', 'stop', shown.id]);
    expect(stop.stdout.trim()).toBe('hello: stopped');
    const rm1 = await corral(['instance', 'rm', 'hello']);
    expect(rm1.code, rm1.stderr).toBe(0);
    const gone = await corral(['instance', 'show', 'hello']);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/^instance_not_found: /);
    const dup = await corral(['instance', 'create', 'argv', '--', 'true']);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toMatch(/^instance_exists: /);
    const bad = await corral(['instance', 'create', 'Bad_Name', '--', 'true']);
    expect(bad.stderr).toMatch(/^validation_failed: .*name/);
  });

  it('attach sends stdin and prints the output (without a terminal)', async () => {
    await corral(['instance', 'create', 'talker', '--shell', 'while read l; do echo "echo: $l"; done']);
    const r = await corral(['instance', 'attach', 'talker'], 'ping\n');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('echo: ping');
  });

  it('deploy packs a directory, uploads it and waits until it runs', async () => {
    const dir = path.join(home, 'myapp');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'Procfile'), 'web: sh serve.sh\n');
    await writeFile(path.join(dir, 'serve.sh'), 'echo "deployed on $PORT"; exec sleep 1000\n');
    const r = await corral(['deploy', dir, '--process', 'web', '--port', 'web']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^myapp is running \(web=127\.0\.0\.1:\d+\)/);
    expect(r.stderr).toMatch(/uploading \[#+\] 100%/);
    const i = await waitForState(server, server.adminToken, 'myapp', 'running');
    expect(i.spec.source).toEqual({ uploaded: 'source.tar.gz' });

    const broken = path.join(home, 'broken');
    await mkdir(broken, { recursive: true });
    await writeFile(path.join(broken, 'README'), 'no Procfile here\n');
    const f = await corral(['deploy', broken]);
    expect(f.code).toBe(1);
    expect(f.stderr).toMatch(/deploy_failed: broken is failed: no_procfile/);
  });
});
