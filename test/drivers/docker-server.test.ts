/**
 * corral with the docker driver enabled, through its API: instances and jobs as containers,
 * the image allow-list, missing images, limits reaching the engine, tenants kept apart, and
 * re-adoption after a restart (graceful, and kill -9 of the server process).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { serverIdOf } from '../../src/core/drivers/index.js';
import { connectEngine } from '../../src/drivers/docker/engine.js';
import { LABEL } from '../../src/drivers/docker/labels.js';
import { BUSYBOX_IMAGE, PYTHON_IMAGE } from '../helpers/docker-images.js';
import { describeDocker } from '../helpers/docker.js';
import { ADMIN_PASSWORD, api, createToken, createUser, login, spawnServer, startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import { runCli } from '../cli/run-cli.js';
import { rawRequest } from '../proxy/fixtures.js';
import { tarBytes } from '../sources/helpers/archives.js';

const NETWORK = 'corral-test';
/** A registry on a closed local port: pulls from it fail without leaving the machine. */
const UNREACHABLE = '127.0.0.1:1/corral/absent:1';

const dockerConfig = (extra: Record<string, unknown> = {}) => ({
  proxy: { pathRouting: true }, // instances are reached at /i/… with the session cookie below (docs/proxy.md)
  drivers: {
    enabled: ['process', 'docker'],
    docker: { images: ['corral-test/*', '127.0.0.1:1/**'], network: NETWORK, warmContainers: 1, ...extra },
  },
  jobs: {
    runtimes: [
      { name: 'sh', driver: 'docker', image: BUSYBOX_IMAGE },
      { name: 'python', driver: 'docker', image: PYTHON_IMAGE },
    ],
  },
});

const engine = () => connectEngine();
const containersOf = (serverId: string, instanceId?: string) =>
  engine().listContainers({
    all: true,
    filters: JSON.stringify({ label: [`${LABEL.server}=${serverId}`, ...(instanceId ? [`${LABEL.instance}=${instanceId}`] : [])] }),
  });

async function removeContainersOf(serverId: string): Promise<void> {
  for (const c of await containersOf(serverId)) await engine().getContainer(c.Id).remove({ force: true }).catch(() => undefined);
}

async function waitForState(server: { url: string }, token: string, id: string, state: string, ms = 20_000) {
  await expect
    .poll(async () => (await api(server, token, 'GET', `/api/v1/instances/${id}`)).body?.state, { timeout: ms, interval: 100 })
    .toBe(state);
}

async function logsOf(server: { url: string }, token: string, id: string): Promise<string> {
  const res = await fetch(`${server.url}/api/v1/instances/${id}/logs`, { headers: { authorization: `Bearer ${token}` } });
  return res.text();
}

describeDocker('corral on docker', () => {
  let server: TestServer;
  let alice: string;
  let bob: string;

  beforeAll(async () => {
    server = await startTestServer(dockerConfig());
    alice = await createUser(server, 'alice');
    bob = await createUser(server, 'bob');
  });
  afterAll(async () => {
    if (!server) return;
    const id = serverIdOf(server.data);
    await server.stop();
    await removeContainersOf(id);
  });

  it('an instance runs as a labelled container with the limits of its spec', async () => {
    const res = await api(server, alice, 'POST', '/api/v1/instances', {
      name: 'labelled',
      driver: 'docker',
      image: BUSYBOX_IMAGE,
      shell: 'echo "hello from $(hostname)"; sleep 60',
      limits: { memoryBytes: 48 * 1024 * 1024, pids: 24, cpus: 0.5 },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.state).toBe('running');
    await expect.poll(() => logsOf(server, alice, res.body.id), { timeout: 10_000 }).toContain('hello from');
    const [c] = await containersOf(serverIdOf(server.data), res.body.id);
    expect(c?.Labels).toMatchObject({ [LABEL.instance]: res.body.id, [LABEL.generation]: '1', [LABEL.kind]: 'instance' });
    const info = await engine().getContainer(c!.Id).inspect();
    expect(info.HostConfig).toMatchObject({ Memory: 48 * 1024 * 1024, PidsLimit: 24, NanoCpus: 5e8, ReadonlyRootfs: true });
    expect(info.HostConfig.RestartPolicy?.Name).toBe('no');
    expect(info.Config.User).toBe('65534:65534');
    expect((await api(server, alice, 'DELETE', `/api/v1/instances/${res.body.id}`)).status).toBe(204);
    expect(await containersOf(serverIdOf(server.data), res.body.id)).toEqual([]);
  });

  it('the CLI creates an instance on docker with --driver and --image', async () => {
    const env = { CORRAL_URL: server.url, CORRAL_TOKEN: alice, XDG_CONFIG_HOME: server.data };
    const created = await runCli(['instance', 'create', 'from-cli', '--driver', 'docker', '--image', BUSYBOX_IMAGE, '-s', 'echo cli-made; sleep 60', '--json'], { env });
    expect(created.code, created.stderr).toBe(0);
    const body = JSON.parse(created.stdout) as { id: string; spec: { driver: string; image: string } };
    expect(body.spec).toMatchObject({ driver: 'docker', image: BUSYBOX_IMAGE });
    expect(await containersOf(serverIdOf(server.data), body.id)).toHaveLength(1);
    const refused = await runCli(['instance', 'create', 'nope', '--driver', 'docker', '--image', 'evil/x:1', '-s', 'true'], { env });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('image_not_allowed');
  });

  it('an image that is not on the allow-list is refused with 403, naming it', async () => {
    const res = await api(server, alice, 'POST', '/api/v1/instances', { name: 'evil', driver: 'docker', image: 'evil/miner:latest', shell: 'true' });
    expect(res.status).toBe(403);
    expect(res.body.error).toMatchObject({ code: 'image_not_allowed', message: expect.stringContaining('evil/miner:latest') });
  });

  it('an allowed image that is missing and cannot be pulled is a clear 400 naming it; nothing is created', async () => {
    const res = await api(server, alice, 'POST', '/api/v1/instances', { name: 'absent', driver: 'docker', image: UNREACHABLE, shell: 'true' });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('image_missing');
    expect(res.body.error.message).toContain(UNREACHABLE);
    expect((await api(server, alice, 'GET', '/api/v1/instances')).body.instances.map((i: { name: string }) => i.name)).not.toContain('absent');
  });

  it('bad driver fields: an unknown driver, an image on the process driver, a malformed image name', async () => {
    const post = (body: object) => api(server, alice, 'POST', '/api/v1/instances', { name: 'bad', shell: 'true', ...body });
    expect((await post({ driver: 'kubernetes' })).body.error).toMatchObject({ code: 'validation_failed', message: expect.stringContaining('kubernetes') });
    expect((await post({ image: BUSYBOX_IMAGE })).body.error).toMatchObject({ code: 'validation_failed', message: expect.stringContaining('process') });
    const malformed = await post({ driver: 'docker', image: 'UPPER CASE;rm' });
    expect(malformed.status).toBe(400);
    expect(malformed.body.error).toMatchObject({ code: 'validation_failed', message: expect.stringContaining('image') });
  });

  it('a Procfile app runs in the image with its unpacked source mounted at /app', async () => {
    const archive = tarBytes(
      [
        { path: 'Procfile', body: 'web: echo "in $PWD as $(id -u)"; cat hello.txt; exec sleep 300\n' },
        { path: 'hello.txt', body: 'hello from the source\n' },
      ],
      { gzip: true },
    );
    const form = new FormData();
    form.append('spec', JSON.stringify({ name: 'procfile', driver: 'docker', image: BUSYBOX_IMAGE }));
    form.append('archive', new Blob([new Uint8Array(archive)]), 'app.tar.gz');
    const res = await fetch(`${server.url}/api/v1/instances`, { method: 'POST', headers: { authorization: `Bearer ${alice}` }, body: form });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    await expect.poll(() => logsOf(server, alice, id), { timeout: 20_000 }).toContain('hello from the source');
    expect(await logsOf(server, alice, id)).toContain('in /app as 65534');
    expect(await containersOf(serverIdOf(server.data), id)).toHaveLength(1);
  });

  it("a tenant's container cannot reach another tenant's container, directly or through the proxy", async () => {
    const web = await api(server, bob, 'POST', '/api/v1/instances', {
      name: 'vault',
      driver: 'docker',
      image: BUSYBOX_IMAGE,
      shell: 'echo bob-secret > /data/secret.txt; exec httpd -f -p "0.0.0.0:$PORT" -h /data',
      ports: [{ name: 'http' }],
    });
    expect(web.status, JSON.stringify(web.body)).toBe(201);
    const hostPort = web.body.ports[0].hostPort as number;
    // The control case: bob reaches his own app through the proxy.
    const bobSession = await login(server.url, 'bob', 'bob-password');
    const aliceSession = await login(server.url, 'alice', 'alice-password');
    await expect.poll(async () => (await rawRequest(server.url, '/i/bob/vault/secret.txt', { cookie: bobSession.cookie })).body, { timeout: 15_000 }).toContain('bob-secret');
    // alice, logged in, is not let through to bob's instance by the proxy.
    const denied = await rawRequest(server.url, '/i/bob/vault/secret.txt', { cookie: aliceSession.cookie });
    expect([403, 404]).toContain(denied.status);
    expect(denied.body).not.toContain('bob-secret');

    const [c] = await containersOf(serverIdOf(server.data), web.body.id);
    const net = (await engine().getContainer(c!.Id).inspect()).NetworkSettings.Networks[NETWORK]!;
    const corralPort = new URL(server.url).port;
    const probe = await api(server, alice, 'POST', '/api/v1/instances', {
      name: 'probe',
      driver: 'docker',
      image: BUSYBOX_IMAGE,
      restart: 'never',
      shell: [
        `wget -q -T 3 -O- http://${net.IPAddress}:${hostPort}/secret.txt || echo blocked-container`,
        `wget -q -T 3 -O- http://${net.Gateway}:${hostPort}/secret.txt || echo blocked-host-port`,
        `wget -q -T 3 -O- http://${net.Gateway}:${corralPort}/i/bob/vault/secret.txt || echo blocked-proxy`,
        'echo probe-done',
      ].join('; '),
    });
    expect(probe.status).toBe(201);
    await expect.poll(() => logsOf(server, alice, probe.body.id), { timeout: 30_000 }).toContain('probe-done');
    const out = await logsOf(server, alice, probe.body.id);
    expect(out).not.toContain('bob-secret');
    expect(out).toContain('blocked-container');
    expect(out).toContain('blocked-host-port');
    expect(out).toContain('blocked-proxy');
  });

  it('jobs run in containers: files in, stdin, output file out, no network', async () => {
    const res = await api(server, alice, 'POST', '/api/v1/jobs', {
      runtime: 'sh',
      files: { 'main.sh': 'read name; echo "hi $name from $(id -u)"; echo result > out.txt; nc -w 2 10.0.0.1 80 </dev/null || echo offline' },
      stdin: 'alice\n',
      output: 'out.txt',
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ status: 'ok', exitCode: 0, stdout: 'hi alice from 65534\noffline\n' });
    expect(Buffer.from(res.body.outputFile.content, 'base64').toString()).toBe('result\n');
    const py = await api(server, alice, 'POST', '/api/v1/jobs', { runtime: 'python', files: { 'main.py': 'import sys; print(sys.version_info[0] * 2)' } });
    expect(py.body).toMatchObject({ status: 'ok', stdout: '6\n' });
    const runtimes = await api(server, alice, 'GET', '/api/v1/runtimes');
    expect(runtimes.body.runtimes.find((r: { name: string }) => r.name === 'sh')).toMatchObject({ driver: 'docker', image: BUSYBOX_IMAGE });
  });

  it('jobs on docker: timeout, memory limit, and the pids limit against a fork bomb', async () => {
    const slow = await api(server, alice, 'POST', '/api/v1/jobs', { runtime: 'sh', files: { 'main.sh': 'echo start; sleep 20' }, timeoutSeconds: 1 });
    expect(slow.body).toMatchObject({ status: 'timeout', stdout: 'start\n' });
    const hog = await api(server, alice, 'POST', '/api/v1/jobs', {
      runtime: 'sh',
      files: { 'main.sh': 'dd if=/dev/zero of=/dev/null bs=200M count=1' },
      limits: { memoryBytes: 32 * 1024 * 1024 },
    });
    expect(hog.body.status).toBe('memory');
    const bomb = await api(server, alice, 'POST', '/api/v1/jobs', {
      runtime: 'sh',
      files: { 'main.sh': 'b() { b | b & }; b; sleep 2; echo survived' },
      limits: { pids: 16 },
      timeoutSeconds: 10,
    });
    expect(bomb.body.stderr).toMatch(/fork|resource|retry/i);
  });
});

/** `corral serve` as a child process, with docker enabled (restarts need a separate process). */
const SERVER_ENV = {
  CORRAL_DRIVERS__ENABLED: '["process","docker"]',
  CORRAL_DRIVERS__DOCKER__IMAGES: '["corral-test/*"]',
  CORRAL_DRIVERS__DOCKER__NETWORK: NETWORK,
  CORRAL_DRIVERS__DOCKER__WARM_CONTAINERS: '0',
};

let tokens = 0;
const adminToken = async (url: string) => createToken(url, await login(url, 'admin', ADMIN_PASSWORD), `ops-${++tokens}`);

describeDocker('corral on docker: restarts', () => {
  it('restarts of the server (SIGTERM, then kill -9) re-adopt the running container; orphans it owns are removed', async () => {
    const data = await tempDir();
    const serverId = serverIdOf(data);
    let server = await spawnServer(data, SERVER_ENV);
    // An orphan this server owns (its instance is unknown) and one another server owns.
    const orphan = await labelledSleeper(serverId, 'no-such-instance');
    const foreign = await labelledSleeper('someone-else', 'x');
    try {
      const res = await api(server, await adminToken(server.url), 'POST', '/api/v1/instances', {
        name: 'echo',
        driver: 'docker',
        image: BUSYBOX_IMAGE,
        shell: 'echo started; while read line; do echo "got:$line"; done',
      });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      const [container] = await containersOf(serverId, res.body.id);
      const adopted = async (what: string) => {
        const token = await adminToken(server.url);
        const shown = await api(server, token, 'GET', `/api/v1/instances/${res.body.id}`);
        expect(shown.body, what).toMatchObject({ state: 'running', generation: 1, restartCount: 0 });
        // The same container, and no second one.
        expect((await containersOf(serverId, res.body.id)).map((c) => c.Id), what).toEqual([container!.Id]);
        expect(await attachLine(server.url, token, res.body.id, what), what).toContain(`got:${what}`);
      };

      expect(await server.kill('SIGTERM')).toMatchObject({ code: 0 });
      expect((await containersOf(serverId, res.body.id))[0]?.State).toBe('running');
      server = await spawnServer(data, SERVER_ENV);
      await adopted('after-sigterm');
      await expect.poll(async () => (await engine().getContainer(orphan).inspect().catch(() => undefined))?.State.Running ?? false, { timeout: 10_000 }).toBe(false);
      expect((await engine().getContainer(foreign).inspect()).State.Running).toBe(true);

      await server.kill('SIGKILL');
      await sleep(300);
      expect((await containersOf(serverId, res.body.id))[0]?.State).toBe('running');
      server = await spawnServer(data, SERVER_ENV);
      await adopted('after-sigkill');
    } finally {
      await server.kill('SIGTERM');
      await engine().getContainer(foreign).remove({ force: true }).catch(() => undefined);
      await removeContainersOf(serverId);
      await rm(data, { recursive: true, force: true });
    }
  }, 120_000); // three server starts on a busy machine
});

/** A sleeping container with corral's labels, as a dead server might leave. */
async function labelledSleeper(serverId: string, instanceId: string): Promise<string> {
  const c = await engine().createContainer({
    Image: BUSYBOX_IMAGE,
    Cmd: ['sleep', '300'],
    Labels: { [LABEL.server]: serverId, [LABEL.kind]: 'instance', [LABEL.instance]: instanceId, [LABEL.generation]: '1', [LABEL.owner]: 'x' },
    HostConfig: { NetworkMode: 'none', Init: true },
  });
  await c.start();
  return c.id;
}

/** Attaches over WebSocket, sends one line, and returns what comes back within a few seconds. */
async function attachLine(url: string, token: string, id: string, line: string): Promise<string> {
  const { default: WebSocket } = await import('ws');
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/api/v1/instances/${id}/attach?token=${token}`);
  let got = '';
  ws.on('message', (m) => (got += m.toString()));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  ws.send(`${line}\n`);
  const deadline = Date.now() + 10_000;
  while (!got.includes(`got:${line}`) && Date.now() < deadline) await sleep(50);
  ws.close();
  return got;
}
