/** `corral instance …` against a live server (needs `npm run build`); `corral deploy` is in test/apps/cli.test.ts. */
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { api, createUser, startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import { runCli } from '../cli/run-cli.js';

vi.setConfig({ testTimeout: 120_000 });

describe('corral instance', () => {
  let server: TestServer;
  let home: string;
  let corral: (args: string[], input?: string, extraEnv?: NodeJS.ProcessEnv) => ReturnType<typeof runCli>;
  beforeAll(async () => {
    server = await startTestServer();
    home = await tempDir('corral-cli-inst-');
    const env = { XDG_CONFIG_HOME: path.join(home, 'xdg'), CORRAL_URL: server.url, CORRAL_TOKEN: server.adminToken };
    corral = (args, input, extraEnv = {}) => runCli(args, { env: { ...env, ...extraEnv }, ...(input !== undefined && { input }) });
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

  it('show prints a readable summary, with units; --json has every field', async () => {
    const made = await corral(['instance', 'create', 'summary', '-p', 'web', '-m', '64M', '--disk', '1G', '--stop-grace', '2m', '-e', 'SECRET=hunter2', '--', 'sleep', '1000']);
    expect(made.code, made.stderr).toBe(0);
    const r = await corral(['instance', 'show', 'summary']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^admin:summary  [0-9a-f-]{36}\n/);
    expect(r.stdout).toMatch(/^  runs: +sleep 1000$/m);
    expect(r.stdout).toMatch(/^  ports: +web → 127\.0\.0\.1:\d+$/m);
    expect(r.stdout).toMatch(/^  limits: +memory 64M, disk 1G$/m);
    expect(r.stdout).toMatch(/^  restart: +always, 0 restarts so far; stops with SIGTERM, SIGKILL after 2m$/m);
    expect(r.stdout).toMatch(/^  env: +SECRET \(values: --json\)$/m);
    expect(r.stdout).not.toContain('hunter2');
    expect(r.stdout).not.toMatch(/[{[]"/); // no raw JSON
    const json = JSON.parse((await corral(['instance', 'show', 'summary', '--json'])).stdout);
    expect(json.spec).toMatchObject({ limits: { memoryBytes: 64 * 2 ** 20, diskBytes: 2 ** 30 }, stopGraceSeconds: 120, env: { SECRET: 'hunter2' } });
  });

  it('errors name the flag as typed, in its units, for bad values and for values the server refuses', async () => {
    const cases: [string[], string][] = [
      [['-m', '1M'], 'bad_input: -m: at least 4M\n'],
      [['--memory', '1M'], 'bad_input: --memory: at least 4M\n'],
      [['-m', '100X'], 'bad_input: -m: "100X" is not a size; e.g. 512M, 2G (K/M/G = KiB/MiB/GiB; a bare number is bytes)\n'],
      [['--stop-grace', '2h'], 'bad_input: --stop-grace: at most 1h\n'],
      [['--stop-grace', '1500ms'], 'bad_input: --stop-grace: whole seconds only, got "1500ms"\n'],
      [['--cpus', 'many'], 'bad_input: --cpus: "many" is not a number\n'],
      [['--cpus', '300'], 'bad_input: --cpus: at most 256\n'],
      [['--pids', '0'], 'bad_input: --pids: at least 1\n'],
    ];
    for (const [flags, stderr] of cases) {
      const r = await corral(['instance', 'create', 'refused', ...flags, '--', 'true']);
      expect([r.code, r.stderr], flags.join(' ')).toEqual([1, stderr]);
    }
    expect((await api(server, server.adminToken, 'GET', '/api/v1/instances/refused')).status).toBe(404);
  });

  it('signal sends a signal by its short or full name; an unknown one lists the valid ones', async () => {
    await corral(['instance', 'create', 'trapper', '--shell', 'trap "echo got-usr1" USR1; trap "echo got-hup" HUP; echo ready; while true; do sleep 0.1; done']);
    await vi.waitFor(async () => expect((await corral(['instance', 'logs', 'trapper'])).stdout).toContain('ready'), { timeout: 30_000, interval: 200 });
    const usr1 = await corral(['instance', 'signal', 'trapper', 'usr1']);
    expect([usr1.code, usr1.stderr, usr1.stdout]).toEqual([0, '', 'sent SIGUSR1 to trapper (running)\n']);
    expect((await corral(['instance', 'signal', 'trapper', 'SIGHUP'])).code).toBe(0);
    await vi.waitFor(async () => expect((await corral(['instance', 'logs', 'trapper'])).stdout).toMatch(/got-usr1\n(.*\n)*got-hup/), { timeout: 30_000, interval: 200 });
    const bad = await corral(['instance', 'signal', 'trapper', 'SIGNOPE']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^bad_argument: unknown signal "SIGNOPE"; one of: SIGTERM, SIGINT, .*SIGUSR1/);
  });

  it('share: with users, idle stop, start on open, default; url and open give its address', async () => {
    await createUser(server, 'bob');
    await corral(['instance', 'create', 'shared', '-p', 'web', '--', 'sleep', '1000']);
    const shown = await corral(['instance', 'share', 'shared']);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(/shared with: +nobody/);

    const r = await corral(['instance', 'share', 'shared', 'bob', '--idle-stop', '30m', '--start-on-open', '--default']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^admin:shared: http:\/\/shared--admin\.localhost:\d+\/\n/);
    expect(r.stdout).toMatch(/shared with: +bob\n/);
    expect(r.stdout).toMatch(/stops when idle: +after 30m without traffic/);
    const settings = await api(server, server.adminToken, 'GET', '/api/v1/proxy/admin/shared');
    expect(settings.body).toMatchObject({ sharedWith: ['bob'], idleTimeoutSeconds: 1800, startOnDemand: true, default: true });

    const off = await corral(['instance', 'share', 'shared', '--remove', 'bob', '--idle-stop', '0', '--no-start-on-open', '--no-default', '--json']);
    expect(JSON.parse(off.stdout)).toMatchObject({ sharedWith: [], idleTimeoutSeconds: 0, startOnDemand: false, default: false });
    const badIdle = await corral(['instance', 'share', 'shared', '--idle-stop', '60d']);
    expect(badIdle.stderr).toBe('bad_input: --idle-stop: at most 30d\n');
    const nobody = await corral(['instance', 'share', 'shared', 'nobody-by-that-name']);
    expect(nobody.stderr).toMatch(/^user_not_found: /);

    const url = await corral(['instance', 'url', 'shared']);
    expect([url.code, url.stdout]).toEqual([0, `${settings.body.url}\n`]);
    // open runs $BROWSER with the address (here a script that writes it down).
    const browser = path.join(home, 'browser.sh');
    const opened = path.join(home, 'opened');
    await writeFile(browser, `#!/bin/sh\necho "$1" > ${opened}\n`);
    await chmod(browser, 0o755);
    const open = await corral(['instance', 'open', 'shared'], undefined, { BROWSER: browser });
    expect([open.code, open.stderr, open.stdout]).toEqual([0, '', `opening ${settings.body.url}\n`]);
    await vi.waitFor(async () => expect(await readFile(opened, 'utf8')).toBe(`${settings.body.url}\n`));
    const noBrowser = await corral(['instance', 'open', 'shared'], undefined, { BROWSER: path.join(home, 'no-such-browser') });
    expect([noBrowser.code, noBrowser.stdout]).toEqual([0, `${settings.body.url}\n`]);
    expect(noBrowser.stderr).toMatch(/no browser to open it with here/);

    await corral(['instance', 'create', 'portless', '--', 'sleep', '1000']);
    const portless = await corral(['instance', 'url', 'portless']);
    expect([portless.code, portless.stderr]).toEqual([1, 'no_port: portless has no port to open: create it with a port (-p web)\n']);
  });
});
