import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createUser, startTestServer, type TestServer } from '../helpers/server.js';
import { runJob } from './helpers.js';

describe('job network', () => {
  let server: TestServer;
  let alice: string;
  const connect = (port: string) =>
    `import socket\ntry:\n    socket.create_connection(("127.0.0.1", ${port}), timeout=2)\n    print("connected")\nexcept OSError as e:\n    print("refused", e.errno)`;
  beforeAll(async () => {
    server = await startTestServer({
      jobs: {
        allowNetwork: true,
        runtimes: [{ name: 'python-net', command: 'python3 main.py', versionCommand: 'python3 --version', network: true }],
      },
    });
    alice = await createUser(server, 'alice');
  });
  afterAll(() => server.stop());

  it('lists a runtime from config with its network flag', async () => {
    const res = await api(server, alice, 'GET', '/api/v1/runtimes');
    expect(res.body.runtimes.find((r: { name: string }) => r.name === 'python-net')).toMatchObject({ network: true, version: expect.stringMatching(/^Python/) });
  });

  it('gives the network only to a job that asks, of a runtime that allows it', async () => {
    const port = new URL(server.url).port;
    const asked = await runJob(server, alice, { runtime: 'python-net', files: { 'main.py': connect(port) }, network: true });
    expect(asked.body.stdout).toBe('connected\n');
    const notAsked = await runJob(server, alice, { runtime: 'python-net', files: { 'main.py': connect(port) } });
    expect(notAsked.body.stdout).toMatch(/^refused/);
    const otherRuntime = await runJob(server, alice, { runtime: 'python', files: { 'main.py': connect(port) }, network: true });
    expect(otherRuntime.status).toBe(403);
    expect(otherRuntime.body.error.message).toMatch(/runtime "python" does not allow network/);
  });
});
