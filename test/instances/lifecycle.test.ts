import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startTestServer, type TestServer } from '../helpers/server.js';
import { createInstance, processesMatching, waitForState } from './helpers.js';

describe('instance lifecycle', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.stop());

  it('creates, stops, starts, restarts and deletes a real process', async () => {
    const marker = `lifecycle-${process.pid}-${Date.now()}`;
    const created = await createInstance(server, server.adminToken, {
      name: 'sleeper',
      command: ['sh', '-c', `exec sleep 1000 # ${marker}`],
      ports: [{ name: 'web' }],
    });
    expect(created.state).toBe('running');
    expect(created.desiredState).toBe('running');
    expect(created.generation).toBe(1);
    expect(created.ports).toHaveLength(1);
    expect(created.ports[0].hostPort).toBeGreaterThan(0);
    const firstPids = await processesMatching(marker);
    expect(firstPids).not.toHaveLength(0);

    const stopped = await api(server, server.adminToken, 'POST', `/api/v1/instances/${created.id}/stop`);
    expect(stopped.status).toBe(200);
    expect(stopped.body.state).toBe('stopped');
    expect(stopped.body.desiredState).toBe('stopped');
    expect(await processesMatching(marker)).toHaveLength(0);

    const started = await api(server, server.adminToken, 'POST', `/api/v1/instances/sleeper/start`);
    expect(started.status).toBe(200);
    expect(started.body.state).toBe('running');
    expect(started.body.generation).toBe(2);

    const restarted = await api(server, server.adminToken, 'POST', `/api/v1/instances/${created.id}/restart`);
    expect(restarted.body.state).toBe('running');
    expect(restarted.body.generation).toBe(3);
    const restartedPids = await processesMatching(marker);
    expect(restartedPids).not.toHaveLength(0);
    expect(restartedPids.some((p) => firstPids.includes(p))).toBe(false);

    const list = await api(server, server.adminToken, 'GET', '/api/v1/instances');
    expect(list.body.instances.map((i: { name: string }) => i.name)).toContain('sleeper');

    const del = await api(server, server.adminToken, 'DELETE', `/api/v1/instances/${created.id}`);
    expect(del.status).toBe(204);
    expect(await processesMatching(marker)).toHaveLength(0);
    const gone = await api(server, server.adminToken, 'GET', `/api/v1/instances/${created.id}`);
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe('instance_not_found');
  });

  it('passes PORT, PORT_<NAME> and env to the process and records its exit', async () => {
    const created = await createInstance(server, server.adminToken, {
      name: 'envcheck',
      shell: 'echo "port=$PORT web=$PORT_WEB admin=$PORT_ADMIN greeting=$GREETING"; exit 3',
      ports: [{ name: 'web' }, { name: 'admin' }],
      env: { GREETING: 'hello' },
      restart: 'never',
    });
    const done = await waitForState(server, server.adminToken, created.id, 'failed');
    expect(done.exitCode).toBe(3);
    expect(done.lastError).toBe('exited with code 3');
    const [web, admin] = done.ports;
    const logs = await fetch(`${server.url}/api/v1/instances/${created.id}/logs`, {
      headers: { authorization: `Bearer ${server.adminToken}` },
    });
    expect(await logs.text()).toContain(`port=${web.hostPort} web=${web.hostPort} admin=${admin.hostPort} greeting=hello`);
  });

  it('reports a clean exit under on-failure as exited', async () => {
    const created = await createInstance(server, server.adminToken, { name: 'oneshot', shell: 'exit 0', restart: 'on-failure' });
    const done = await waitForState(server, server.adminToken, created.id, 'exited');
    expect(done.exitCode).toBe(0);
    expect(done.lastError).toBeNull();
    expect(done.restartCount).toBe(0);
  });
});
