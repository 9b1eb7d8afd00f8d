/**
 * The swarm driver on a real engine in swarm mode (a one-node swarm, made here when the test
 * engine is not one yet, and left again at the end): the conformance suite with tasks placed
 * by the swarm, plus services placed freely with ports in ingress mode, pinned services whose
 * stdin works, services labelled, listed, re-adopted after a server lets go, and removed when
 * their workload ends.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { Value } from '@sinclair/typebox/value';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerConfigSchema, type DockerConfig } from '../../src/drivers/docker/config.js';
import { connectEngine } from '../../src/drivers/docker/engine.js';
import { LABEL } from '../../src/drivers/docker/labels.js';
import type { Handle } from '../../src/drivers/driver.js';
import { overlayOf, SwarmDriver } from '../../src/drivers/swarm/swarm-driver.js';
import { serviceTasks } from '../../src/drivers/swarm/tasks.js';
import { BUSYBOX_IMAGE } from '../helpers/docker-images.js';
import { describeDocker } from '../helpers/docker.js';
import { describeDriverConformance } from './conformance.js';
import { waitFor } from '../instances/helpers.js';
import { rawRequest } from '../proxy/fixtures.js';
import { api, login, startTestServer, ADMIN_PASSWORD, type TestServer } from '../helpers/server.js';
import { exitWithin, makeDirs, makeSpec, removeDirs, run, type DriverTestDirs } from './harness.js';

const config = (): DockerConfig => ({ ...(Value.Default(DockerConfigSchema, {}) as DockerConfig), pull: false });
const serverId = () => `s${randomBytes(5).toString('hex')}`;

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

/** Makes the test engine a one-node swarm (once); returns whether we did. */
let joined: Promise<boolean> | undefined;
function ensureSwarm(): Promise<boolean> {
  joined ??= (async () => {
    const engine = connectEngine();
    const info = (await engine.info()) as { Swarm?: { LocalNodeState?: string } };
    if (info.Swarm?.LocalNodeState === 'active') return false;
    await engine.swarmInit({ ListenAddr: `127.0.0.1:${await freePort()}`, AdvertiseAddr: '127.0.0.1' });
    return true;
  })();
  return joined;
}

async function removeServices(id: string): Promise<void> {
  const engine = connectEngine();
  const found = (await engine.listServices({ filters: JSON.stringify({ label: [`${LABEL.server}=${id}`] }) } as never)) as unknown as { ID: string }[];
  await Promise.all(found.map((s) => engine.getService(s.ID).remove().catch(() => undefined)));
}

describeDocker('swarm driver', () => {
  const ids: string[] = [];
  afterAll(async () => {
    for (const id of ids) await removeServices(id);
    if (await joined?.catch(() => false)) await connectEngine().swarmLeave({ force: true }).catch(() => undefined);
  });
  const makeDriver = async (pinToLocalNode = false) => {
    await ensureSwarm();
    const id = serverId();
    ids.push(id);
    return new SwarmDriver({ engine: connectEngine(), serverId: id, config: config(), pinToLocalNode });
  };
  const serviceOf = async (h: Handle) =>
    (await connectEngine().getService(String(h.serviceId)).inspect()) as {
      Spec: { TaskTemplate: { Placement?: { Constraints?: string[] } }; EndpointSpec?: { Ports?: { PublishMode?: string; PublishedPort?: number }[] } };
    };

  describeDriverConformance('swarm', () => makeDriver(), {
    image: BUSYBOX_IMAGE,
    limits: { memory: true, pids: true, cpu: true },
    isolation: { filesystem: true, network: true },
    sharesHostLoopback: false,
    tcpConnect: (port) => ['sh', '-c', `nc -w 2 127.0.0.1 ${port} </dev/null && echo connected`],
    noStdin: 'a task the swarm places has no stdin (only with drivers.swarm.pinToLocalNode, tested below)',
  });

  describe('services', () => {
    let dirs: DriverTestDirs;
    let driver: SwarmDriver;
    let pinned: SwarmDriver;
    let id: string;
    beforeAll(async () => {
      dirs = await makeDirs();
      driver = await makeDriver();
      pinned = await makeDriver(true);
      id = ids[ids.length - 1]!;
    });
    afterAll(async () => {
      await driver?.close();
      await pinned?.close();
      if (dirs) await removeDirs(dirs);
    });
    const spec = (name: string, shell: string) => makeSpec(dirs, { dataMount: '/data', image: BUSYBOX_IMAGE }, name, shell);

    it('places a task freely and publishes its port through the ingress mesh; write() is a no-op', async () => {
      const port = await freePort();
      const r = await run(driver, {
        ...spec('free', 'echo hi > index.html; echo up; exec httpd -f -p 8080 -h .'),
        ports: [{ name: 'web', containerPort: 8080, hostPort: port }],
      });
      await r.waitFor(/up/);
      const { Spec } = await serviceOf(r.workload.handle);
      expect(Spec.TaskTemplate.Placement?.Constraints ?? []).toEqual([]);
      expect(Spec.EndpointSpec?.Ports).toMatchObject([{ PublishMode: 'ingress', PublishedPort: port }]);
      // The routing mesh answers on 127.0.0.1, where the proxy connects; the mesh balances with
      // IPVS, which some kernels (this CI's containers) lack: then only the spec is checked.
      if (existsSync('/proc/net/ip_vs')) await expect.poll(() => fetch(`http://127.0.0.1:${port}/`).then((res) => res.text(), () => ''), { timeout: 20_000 }).toBe('hi\n');
      r.workload.write('ignored\n');
      await r.workload.stop('SIGTERM', 2000);
      await exitWithin(r);
    });

    it('runs a labelled, pinned service that a later server re-adopts, and removes it when the workload ends', async () => {
      const r = await run(pinned, spec('adoptee', 'echo up; while true; do read line && echo "got $line"; done'));
      await r.waitFor(/up/);
      expect(r.workload.handle).toMatchObject({ driver: 'swarm', instanceId: 'adoptee', generation: 1 });
      expect((await serviceOf(r.workload.handle)).Spec.TaskTemplate.Placement?.Constraints).toEqual([expect.stringMatching(/^node\.id==/)]);
      // The task's container drops every capability, as the docker driver's does.
      const [task] = await serviceTasks(connectEngine(), String(r.workload.handle.serviceId));
      const container = await connectEngine().getContainer(task!.Status!.ContainerStatus!.ContainerID!).inspect();
      expect(container.HostConfig.CapDrop).toEqual(['ALL']);
      const listed = await pinned.list();
      expect(listed.map((h) => h.instanceId)).toContain('adoptee');
      await pinned.close(); // lets go: the service keeps running

      const next = new SwarmDriver({ engine: connectEngine(), serverId: id, config: config(), pinToLocalNode: true });
      const out: string[] = [];
      let exited = false;
      const w = await next.adopt(r.workload.handle, { output: (_s, c) => out.push(c.toString()), exit: () => (exited = true) });
      expect(w).toBeDefined();
      w!.write('hello\n');
      await expect.poll(() => out.join(''), { timeout: 15_000 }).toContain('got hello');
      await w!.stop('SIGTERM', 2000);
      await expect.poll(() => exited, { timeout: 15_000 }).toBe(true);
      await expect.poll(async () => (await next.list()).length, { timeout: 15_000 }).toBe(0);
      await next.close();
      pinned = next;
    });

    it("keeps owners apart: each owner's tasks join their own overlay, with no path into another owner's", async () => {
      const as = (owner: string, name: string, shell: string) =>
        makeSpec(dirs, { dataMount: '/data', image: BUSYBOX_IMAGE }, name, shell, { owner, network: true });
      const engine = connectEngine();
      const networksOf = async (r: Awaited<ReturnType<typeof run>>) =>
        (await engine.getContainer(String(r.workload.handle.containerId)).inspect()).NetworkSettings.Networks;
      const web = await run(pinned, as('alice', 'alice-web', 'echo up; exec httpd -f -p 8080 -h .'));
      await web.waitFor(/up/);
      const aliceNets = await networksOf(web);
      expect(Object.keys(aliceNets)).toEqual([overlayOf('alice')]);
      const ip = aliceNets[overlayOf('alice')]!.IPAddress;
      // The control: a task of the same owner connects over the overlay (a direct link, so
      // nothing leaves the machine).
      const friend = await run(pinned, as('alice', 'alice-probe', `nc -w 3 ${ip} 8080 </dev/null && echo REACHED || echo BLOCKED`));
      await friend.waitFor(/REACHED|BLOCKED/);
      expect(friend.stdout()).toContain('REACHED');
      // Another owner's task is on another overlay and has no link to alice's: the kernel
      // would send to her address through the gateway (eth1), which leads off the machine and
      // never into her overlay. Asked with `ip route get`, which sends nothing — a real
      // connection attempt would leave the machine.
      const stranger = await run(pinned, as('bob', 'bob-probe', `ip -o route get ${ip}; echo DONE; exec sleep 60`));
      await stranger.waitFor(/DONE/);
      expect(Object.keys(await networksOf(stranger))).toEqual([overlayOf('bob')]);
      const route = stranger.stdout().split('\n')[0]!;
      expect(route).toMatch(/ via \S+ dev eth1/);
      for (const r of [web, stranger]) {
        await r.workload.stop('SIGTERM', 2000);
        await exitWithin(r);
      }
    });

    it('refuses a service the swarm cannot start, with the reason', async () => {
      const bad = { ...spec('badimage', 'true'), image: 'corral-no-such-image:never' };
      await expect(run(driver, bad).then(exitWithin)).rejects.toThrow(/image/);
    });
  });

  describe('in a server', () => {
    let server: TestServer;
    beforeAll(async () => {
      await ensureSwarm();
      server = await startTestServer({
        // Pinned, so ports are published on this node in host mode: the ingress mesh needs IPVS,
        // which this machine's kernel may lack (the test above checks the mesh where it can).
        drivers: { enabled: ['process', 'swarm'], docker: { images: [BUSYBOX_IMAGE], pull: false }, swarm: { pinToLocalNode: true } },
        instances: { restart: { initialDelayMs: 200 } },
        proxy: { pathRouting: true }, // the instance is reached at /i/… with the session cookie (docs/proxy.md)
      });
      ids.push((await import('../../src/core/drivers/index.js')).serverIdOf(server.data));
    }, 60_000);
    afterAll(async () => server?.stop());

    it("restarts an instance whose task died, and the proxy follows it", async () => {
      // Each run counts itself in the data dir and serves the count on its port.
      const shell = 'n=$(($(cat n 2>/dev/null || echo 0)+1)); echo $n > n; mkdir -p www; echo "run $n" > www/index.html; exec httpd -f -p $PORT_WEB -h www';
      const created = await api(server, server.adminToken, 'POST', '/api/v1/instances', {
        name: 'web',
        driver: 'swarm',
        image: BUSYBOX_IMAGE,
        shell,
        ports: [{ name: 'web' }],
      });
      expect(created.status).toBe(201);
      const { cookie } = await login(server.url, 'admin', ADMIN_PASSWORD);
      const page = async () => (await rawRequest(server.url, '/i/admin/web/', { cookie })).body;
      await expect.poll(page, { timeout: 30_000 }).toBe('run 1\n');

      // The task's container dies under the swarm: corral starts the next generation.
      const before = await waitFor(server, server.adminToken, created.body.id, (i) => i.state === 'running');
      const engine = connectEngine();
      const services = (await engine.listServices({ filters: JSON.stringify({ label: [`${LABEL.instance}=${created.body.id}`] }) } as never)) as unknown as { ID: string }[];
      expect(services).toHaveLength(1);
      const tasks = (await engine.listTasks({ filters: JSON.stringify({ service: [services[0]!.ID] }) })) as { Status: { ContainerStatus: { ContainerID: string } } }[];
      await engine.getContainer(tasks[0]!.Status.ContainerStatus.ContainerID).kill({ signal: 'SIGKILL' });
      await waitFor(server, server.adminToken, created.body.id, (i) => i.state === 'running' && i.generation > before.generation, 30_000);
      await expect.poll(page, { timeout: 30_000 }).toBe('run 2\n');
    }, 120_000);
  });
});
