/**
 * Tenant isolation on the network (the isolation issue, item 5; old clients, item 5), through
 * a real server: bob's instance found alice's loopback port in /proc/net/tcp and called it
 * with a forged X-Corral-User, bypassing the proxy. Now each instance has its own network
 * namespace: the attack below finds nothing to connect to — not alice's host port, not her
 * declared port, not corral's port, not a loopback service of the host — while alice's app,
 * an old daemon listening on a fixed port, is served through the proxy. Every connection goes
 * to 127.0.0.1 (the host's or a sandbox's own); nothing else is ever addressed.
 */
import { createServer, type Server as NetServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectSandbox } from '../../src/drivers/process/detect.js';
import { detectPasta } from '../../src/drivers/process/network.js';
import { api, createUser, startTestServer, type TestServer } from '../helpers/server.js';
import { rawRequest } from '../proxy/fixtures.js';
import { createInstance, processesMatching, waitForState } from './helpers.js';

const sandbox = await detectSandbox();
const pasta = sandbox.available && sandbox.path ? await detectPasta(sandbox.path) : { available: false };

/** alice's app as docker-era images were: an HTTP server on a fixed 8000, not $PORT. */
const LEGACY_APP = `
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("legacy app for " + str(self.headers.get("x-corral-user"))).encode()
        self.send_response(200); self.send_header("content-length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", 8000), H).serve_forever()
`;

/** bob's attack: every port it can think of on 127.0.0.1, with a forged identity header. */
const attack = (ports: number[]) => `
import socket
for p in [${ports.join(', ')}]:
    try:
        s = socket.create_connection(("127.0.0.1", p), timeout=3)
        s.sendall(b"GET / HTTP/1.0\\r\\nX-Corral-User: alice\\r\\n\\r\\n")
        print(p, "connected", s.recv(200))
    except OSError as e:
        print(p, "refused", e.errno)
`;

/** pasta processes forwarding `hostPort` (their command line names it). */
const pastasFor = (hostPort: number) => processesMatching(`127.0.0.1/${hostPort}:`);

describe.skipIf(!sandbox.available || !pasta.available)('each instance in its own network namespace', () => {
  let server: TestServer;
  let alice: string;
  let bob: string;
  let hostService: NetServer;
  let hostServicePort = 0;
  let hostServiceHits = 0;
  let legacy: { id: string; ports: { name: string; hostPort: number }[] };

  beforeAll(async () => {
    server = await startTestServer();
    alice = await createUser(server, 'alice');
    bob = await createUser(server, 'bob');
    // Some other service of the host, on its loopback only: no instance may reach it.
    hostService = createServer((s) => {
      hostServiceHits++;
      s.end('host service\n');
    });
    await new Promise<void>((r) => hostService.listen(0, '127.0.0.1', r));
    hostServicePort = (hostService.address() as { port: number }).port;
    legacy = await createInstance(server, alice, {
      name: 'legacy',
      command: ['python3', '-c', LEGACY_APP],
      ports: [{ name: 'http', port: 8000 }],
    });
  });
  afterAll(async () => {
    await server?.stop();
    await new Promise((r) => hostService?.close(r));
  });

  it('serves an old daemon listening on its fixed port through the proxy, with PORT saying it', async () => {
    const hostPort = legacy.ports[0]!.hostPort;
    expect(hostPort).not.toBe(8000);
    const auth = { host: 'legacy--alice.localhost', authorization: `Bearer ${alice}` };
    await expect.poll(async () => (await rawRequest(server.url, '/', auth)).body, { timeout: 20_000 }).toBe('legacy app for alice');

    const env = await createInstance(server, alice, { name: 'env', shell: 'echo "PORT=$PORT PORT_HTTP=$PORT_HTTP"', ports: [{ name: 'http', port: 8000 }], restart: 'never' });
    await waitForState(server, alice, env.id, 'exited');
    const logs = await (await fetch(`${server.url}/api/v1/instances/${env.id}/logs?tail=10`, { headers: { authorization: `Bearer ${alice}` } })).text();
    expect(logs).toContain('PORT=8000 PORT_HTTP=8000');
  });

  it("bob's instance reaches neither alice's ports, nor corral's, nor the host's loopback services", async () => {
    const corralPort = Number(new URL(server.url).port);
    const alicePort = legacy.ports[0]!.hostPort;
    const before = hostServiceHits;
    const probe = await createInstance(server, bob, {
      name: 'probe',
      command: ['python3', '-c', attack([alicePort, 8000, corralPort, hostServicePort])],
      ports: [{ name: 'web' }],
      restart: 'never',
    });
    await waitForState(server, bob, probe.id, 'exited');
    const logs = await (await fetch(`${server.url}/api/v1/instances/${probe.id}/logs?tail=20`, { headers: { authorization: `Bearer ${bob}` } })).text();
    for (const port of [alicePort, 8000, corralPort, hostServicePort]) expect(logs).toMatch(new RegExp(`^${port} refused`, 'm'));
    expect(logs).not.toContain('connected');
    expect(hostServiceHits).toBe(before);
    // Alice's app still answers, through the proxy only.
    const auth = { host: 'legacy--alice.localhost', authorization: `Bearer ${alice}` };
    expect((await rawRequest(server.url, '/', auth)).body).toBe('legacy app for alice');
  });

  it('leaves no pasta behind after a stop, a delete, or a server stop', async () => {
    const one = await createInstance(server, alice, { name: 'one', command: ['sleep', '600'], ports: [{ name: 'web' }] });
    const port1 = one.ports[0].hostPort as number;
    expect(await pastasFor(port1)).not.toEqual([]);
    expect((await api(server, alice, 'POST', `/api/v1/instances/${one.id}/stop`)).status).toBe(200);
    await waitForState(server, alice, one.id, 'stopped');
    expect(await pastasFor(port1)).toEqual([]);

    const two = await createInstance(server, alice, { name: 'two', command: ['sleep', '600'], ports: [{ name: 'web' }] });
    const port2 = two.ports[0].hostPort as number;
    expect(await pastasFor(port2)).not.toEqual([]);
    expect((await api(server, alice, 'DELETE', `/api/v1/instances/${two.id}`)).status).toBe(204);
    await expect.poll(() => pastasFor(port2), { timeout: 10_000 }).toEqual([]);

    const other = await startTestServer();
    const carol = await createUser(other, 'carol');
    const three = await createInstance(other, carol, { name: 'three', command: ['sleep', '600'], ports: [{ name: 'web' }] });
    const port3 = three.ports[0].hostPort as number;
    expect(await pastasFor(port3)).not.toEqual([]);
    await other.stop();
    expect(await pastasFor(port3)).toEqual([]);
  }, 90_000); // two servers and three sandboxes with pasta: over 30 s on a busy machine
});

describe.skipIf(!sandbox.available)('without pasta', () => {
  const MISSING = '/nonexistent/corral-test/pasta';
  let server: TestServer;
  let alice: string;
  beforeAll(async () => {
    server = await startTestServer({ drivers: { process: { pasta: MISSING } } });
    alice = await createUser(server, 'alice');
  });
  afterAll(() => server?.stop());

  it('refuses an instance with ports (503 naming both fixes), runs one without', async () => {
    const refused = await api(server, alice, 'POST', '/api/v1/instances', { name: 'web', command: ['sleep', '600'], ports: [{ name: 'web' }] });
    expect(refused.status).toBe(503);
    expect(refused.body.error.code).toBe('driver_unavailable');
    expect(refused.body.error.message).toContain('apt-get install passt');
    expect(refused.body.error.message).toContain('drivers.process.hostNetwork: true');
    const portless = await createInstance(server, alice, { name: 'worker', command: ['sleep', '600'] });
    await waitForState(server, alice, portless.id, 'running');
  });

  it('says so in corral doctor', async () => {
    const { runDoctor } = await import('../../src/core/doctor.js');
    const report = await runDoctor({ data: server.data, process: { pasta: MISSING } });
    expect(report.checks.find((c) => c.name === 'network isolation')).toMatchObject({ status: 'missing', without: expect.stringContaining('apt-get install passt') });
  });
});

describe.skipIf(!sandbox.available)('drivers.process.hostNetwork: the old shared network, chosen explicitly', () => {
  let server: TestServer;
  let alice: string;
  beforeAll(async () => {
    server = await startTestServer({ drivers: { process: { hostNetwork: true, pasta: '/nonexistent/corral-test/pasta' } } });
    alice = await createUser(server, 'alice');
  });
  afterAll(() => server?.stop());

  it('runs instances with ports without pasta, PORT naming the host port even when one is declared', async () => {
    const app = await createInstance(server, alice, {
      name: 'shared',
      shell: 'echo "PORT=$PORT"; exec python3 -m http.server "$PORT" --bind 127.0.0.1',
      ports: [{ name: 'http', port: 8000 }],
    });
    const hostPort = app.ports[0].hostPort as number;
    const auth = { host: 'shared--alice.localhost', authorization: `Bearer ${alice}` };
    await expect.poll(async () => (await rawRequest(server.url, '/', auth)).status, { timeout: 20_000 }).toBe(200);
    const logs = await (await fetch(`${server.url}/api/v1/instances/${app.id}/logs?tail=10`, { headers: { authorization: `Bearer ${alice}` } })).text();
    expect(logs).toContain(`PORT=${hostPort}`);
    const { runDoctor } = await import('../../src/core/doctor.js');
    const report = await runDoctor({ data: server.data, process: { hostNetwork: true } });
    expect(report.checks.find((c) => c.name === 'network isolation')).toMatchObject({ status: 'missing', detail: expect.stringContaining('UNSAFE') });
  });
});
