/** `corral instance …` against a live server (needs `npm run build`); `corral deploy` is in test/apps/cli.test.ts. */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import { runCli } from '../cli/run-cli.js';

vi.setConfig({ testTimeout: 120_000 });

describe('corral instance', () => {
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
});
