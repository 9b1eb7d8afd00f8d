/**
 * The network of jobs. A job gets one only when it asks, its runtime allows it and the admin
 * allows it (jobs.allowNetwork); even then it is its own network namespace with outbound
 * through pasta (drivers.process.outbound: pasta), never the host's loopback: not corral's
 * own port, not an instance, not any loopback service (the isolation issue, item 5). Every
 * connection here goes to 127.0.0.1; routes out are read with `ip route`, never tried.
 */
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectSandbox } from '../../src/drivers/process/detect.js';
import { detectPasta } from '../../src/drivers/process/network.js';
import { api, createUser, startTestServer, type TestServer } from '../helpers/server.js';
import { createInstance } from '../instances/helpers.js';
import { runJob } from './helpers.js';

const sandbox = await detectSandbox();
const pasta = sandbox.available && sandbox.path ? await detectPasta(sandbox.path) : { available: false };

const connect = (ports: number[]) =>
  `import socket\nfor p in [${ports.join(', ')}]:\n    try:\n        socket.create_connection(("127.0.0.1", p), timeout=2)\n        print(p, "connected")\n    except OSError as e:\n        print(p, "refused", e.errno)`;

const NETWORK_RUNTIME = { name: 'python-net', command: 'python3 main.py', versionCommand: 'python3 --version', network: true };

describe.skipIf(!sandbox.available || !pasta.available)('job network (outbound: pasta)', () => {
  let server: TestServer;
  let alice: string;
  let listener: Server;
  let listenerPort = 0;
  let hits = 0;
  beforeAll(async () => {
    server = await startTestServer({ jobs: { allowNetwork: true, runtimes: [NETWORK_RUNTIME] }, drivers: { process: { outbound: 'pasta' } } });
    alice = await createUser(server, 'alice');
    listener = createServer((s) => {
      hits++;
      s.end();
    });
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
    listenerPort = (listener.address() as { port: number }).port;
  });
  afterAll(async () => {
    await server?.stop();
    await new Promise((r) => listener?.close(r));
  });

  it('lists a runtime from config with its network flag', async () => {
    const res = await api(server, alice, 'GET', '/api/v1/runtimes');
    expect(res.body.runtimes.find((r: { name: string }) => r.name === 'python-net')).toMatchObject({ network: true, version: expect.stringMatching(/^Python/) });
  });

  it('gives a route out only to a job that asks, of a runtime that allows it', async () => {
    const routes = 'import subprocess\nprint(subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout or "no routes")';
    const asked = await runJob(server, alice, { runtime: 'python-net', files: { 'main.py': routes }, network: true });
    expect(asked.body.stdout).toMatch(/^default via /m);
    const notAsked = await runJob(server, alice, { runtime: 'python-net', files: { 'main.py': routes } });
    expect(notAsked.body.stdout).toBe('no routes\n');
    const otherRuntime = await runJob(server, alice, { runtime: 'python', files: { 'main.py': routes }, network: true });
    expect(otherRuntime.status).toBe(403);
    expect(otherRuntime.body.error.message).toMatch(/runtime "python" does not allow network/);
  });

  it("with the network, reaches neither corral's port, nor an instance, nor a host loopback service", async () => {
    const instance = await createInstance(server, alice, { name: 'web', shell: 'exec python3 -m http.server "$PORT" --bind 127.0.0.1', ports: [{ name: 'web' }] });
    const instancePort = instance.ports[0].hostPort as number;
    const corralPort = Number(new URL(server.url).port);
    const before = hits;
    const job = await runJob(server, alice, { runtime: 'python-net', files: { 'main.py': connect([corralPort, instancePort, listenerPort]) }, network: true });
    for (const p of [corralPort, instancePort, listenerPort]) expect(job.body.stdout).toMatch(new RegExp(`^${p} refused`, 'm'));
    expect(hits).toBe(before);
  });
});

describe.skipIf(!sandbox.available)('job network (outbound: none, the default)', () => {
  let server: TestServer;
  let alice: string;
  beforeAll(async () => {
    server = await startTestServer({ jobs: { allowNetwork: true, runtimes: [NETWORK_RUNTIME] } });
    alice = await createUser(server, 'alice');
  });
  afterAll(() => server?.stop());

  it('refuses a job asking for the network: there is none to give (403 naming the setting)', async () => {
    const res = await runJob(server, alice, { runtime: 'python-net', files: { 'main.py': connect([Number(new URL(server.url).port)]) }, network: true });
    expect(res.status).toBe(403);
    expect(res.body.error.message).toContain('drivers.process.outbound');
  });
});
