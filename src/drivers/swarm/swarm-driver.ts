/**
 * The swarm driver: each instance generation is a one-replica Docker swarm service (limits,
 * labels, host-mode ports, the overlay network). corral watches the service's task: its container's output, stdin, signals
 * and exit go through the engine like the docker driver's (a DockerWorkload over the task's
 * container), so the task is pinned to the node of that engine; across several nodes, run a
 * manager per node on one PostgreSQL (docs/deployment.md). Swarm's own restart policy is off:
 * corral's supervisor restarts a workload that ended, with its backoff, as a new service.
 */
import { chown, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type Docker from 'dockerode';
import { errors } from '../../core/errors.js';
import type { Driver, Handle, Isolation, Workload, WorkloadSink, WorkloadSpec } from '../driver.js';
import type { DockerConfig } from '../docker/config.js';
import { containerIsolation, containerSettings, hostOwner, imageOf, type ContainerSettings } from '../docker/container-spec.js';
import { DockerWorkload } from '../docker/docker-workload.js';
import { engineMessage, ensureImage, statusOf, type Engine } from '../docker/engine.js';
import { LABEL } from '../docker/labels.js';
import { instanceService, TMP_DIR } from './service-spec.js';
import { followTask } from './task-io.js';

const DRIVER = 'swarm';
/** How long a new service may take to get a container on a node. */
const TASK_START_MS = 60_000;
const TASK_POLL_MS = 200;
/** The attachable overlay network of services with network access. */
const OVERLAY = 'corral-swarm';

export interface SwarmDriverOptions {
  engine: Engine;
  serverId: string;
  /** The docker driver's settings (image allow-list, user, pull) apply to services too. */
  config: DockerConfig;
}

export class SwarmDriver implements Driver {
  readonly name = DRIVER;
  private readonly live = new Set<DockerWorkload>();
  /** Workloads let go of at close: their services keep running for the next server. */
  private readonly released = new WeakSet<DockerWorkload>();
  private readonly settings: ContainerSettings;
  private overlay?: Promise<void>;
  private node?: Promise<string>;

  constructor(private readonly opts: SwarmDriverOptions) {
    this.settings = containerSettings(opts.serverId, opts.config);
  }

  private get engine(): Engine {
    return this.opts.engine;
  }

  async isolation(): Promise<Isolation> {
    return containerIsolation([
      'swarm: one service per instance generation; the container has its own namespaces, a read-only root, a private /tmp and only the data dir bind-mounted',
      `runs as ${this.settings.user || "the image's user"}; swarm services cannot drop capabilities on this engine API`,
      '/tmp is read-only to the workload (swarm ignores the tmpfs mode): TMPDIR points into the data dir',
      `network: none when network=false; else the attachable overlay "${OVERLAY}"; ports published in host mode on this node, where tasks are pinned`,
    ]);
  }

  async start(spec: WorkloadSpec, sink: WorkloadSink): Promise<Workload> {
    const image = imageOf(spec, this.opts.config, 'swarm');
    await ensureImage(this.engine, image, { pull: this.opts.config.pull });
    if (spec.network) await this.ensureOverlay();
    const tmp = path.join(spec.dataDir, TMP_DIR);
    await mkdir(tmp, { recursive: true, mode: 0o700 });
    const owner = hostOwner(this.settings.user);
    if (owner) for (const dir of [spec.dataDir, tmp]) await chown(dir, owner.uid, owner.gid);
    const create = instanceService(spec, image, this.settings, OVERLAY, await this.localNode());
    let service: Docker.Service;
    try {
      service = await this.engine.createService(create);
    } catch (e) {
      if (statusOf(e) !== 409) throw startError(e);
      // Left by a server that died between create and recording the handle.
      await this.engine.getService(create.Name!).remove().catch(() => undefined);
      service = await this.engine.createService(create).catch((e2: unknown) => Promise.reject(startError(e2)));
    }
    try {
      const containerId = await this.taskContainer(service.id);
      const container = this.engine.getContainer(containerId);
      const io = await followTask(container, (stream, chunk) => sink.output(stream, chunk));
      const handle: Handle = { driver: DRIVER, instanceId: spec.instanceId, generation: spec.generation, serviceId: service.id, containerId };
      return this.watch(handle, service, container, io, sink);
    } catch (e) {
      await service.remove().catch(() => undefined);
      throw e;
    }
  }

  async adopt(handle: Handle, sink: WorkloadSink): Promise<Workload | undefined> {
    if (handle.driver !== DRIVER || typeof handle.serviceId !== 'string' || typeof handle.containerId !== 'string') return undefined;
    const service = this.engine.getService(handle.serviceId);
    let labels: Record<string, string>;
    try {
      labels = ((await service.inspect()) as { Spec: { Labels?: Record<string, string> } }).Spec.Labels ?? {};
    } catch (e) {
      if (statusOf(e) === 404) return undefined;
      throw e;
    }
    if (labels[LABEL.instance] !== String(handle.instanceId) || labels[LABEL.generation] !== String(handle.generation)) return undefined;
    const container = this.engine.getContainer(handle.containerId);
    const running = await container.inspect().then((i) => i.State.Running, () => false);
    if (!running) {
      await service.remove().catch(() => undefined);
      return undefined;
    }
    const io = await followTask(container, (stream, chunk) => sink.output(stream, chunk), Math.floor(Date.now() / 1000));
    return this.watch(handle, service, container, io, sink);
  }

  async list(): Promise<Handle[]> {
    const filters = JSON.stringify({ label: [`${LABEL.server}=${this.opts.serverId}`, `${LABEL.kind}=instance`] });
    const services = (await this.engine.listServices({ filters } as Docker.ServiceListOptions)) as unknown as {
      ID: string;
      Spec: { Labels?: Record<string, string> };
    }[];
    return services.map((s) => ({
      driver: DRIVER,
      instanceId: s.Spec.Labels?.[LABEL.instance] ?? null,
      generation: Number(s.Spec.Labels?.[LABEL.generation] ?? 0),
      serviceId: s.ID,
      containerId: '',
    }));
  }

  /** Lets go of the services without stopping them: the next server re-adopts them. */
  async close(): Promise<void> {
    for (const w of this.live) {
      this.released.add(w);
      w.detach();
    }
    this.live.clear();
  }

  /** The container of the service's task, once the swarm has created it; a task that failed to start is an error. */
  private async taskContainer(serviceId: string): Promise<string> {
    const deadline = Date.now() + TASK_START_MS;
    const filters = JSON.stringify({ service: [serviceId] });
    while (Date.now() < deadline) {
      const tasks = (await this.engine.listTasks({ filters })) as {
        Status?: { State?: string; Err?: string; ContainerStatus?: { ContainerID?: string } };
      }[];
      for (const t of tasks) {
        const id = t.Status?.ContainerStatus?.ContainerID;
        if (id && ['running', 'complete', 'failed', 'shutdown'].includes(t.Status!.State!)) return id;
        if (['rejected', 'failed'].includes(t.Status?.State ?? '')) {
          throw errors.badRequest(`the swarm could not start the service: ${t.Status?.Err ?? t.Status?.State}`);
        }
      }
      await sleep(TASK_POLL_MS);
    }
    throw errors.driverUnavailable(`the swarm did not start a task within ${TASK_START_MS / 1000} s (no node can run it?)`);
  }

  private watch(handle: Handle, service: Docker.Service, container: Docker.Container, io: Awaited<ReturnType<typeof followTask>>, sink: WorkloadSink): DockerWorkload {
    const w: DockerWorkload = new DockerWorkload(handle, container, io, sink, () => {
      this.live.delete(w);
      io.logs.destroy();
      // The generation is over once its container exited (not when we only let go of it).
      if (!this.released.has(w)) void service.remove().catch(() => undefined);
    });
    this.live.add(w);
    return w;
  }

  /** This engine's swarm node: tasks are pinned to it, since corral watches them through it. */
  private localNode(): Promise<string> {
    this.node ??= this.engine.info().then((i: { Swarm?: { NodeID?: string } }) => {
      if (!i.Swarm?.NodeID) throw errors.driverUnavailable('the Docker engine is not part of a swarm (docker swarm init)');
      return i.Swarm.NodeID;
    });
    this.node.catch(() => (this.node = undefined));
    return this.node;
  }

  private ensureOverlay(): Promise<void> {
    this.overlay ??= this.engine
      .createNetwork({ Name: OVERLAY, Driver: 'overlay', Attachable: true, CheckDuplicate: true, Labels: { [LABEL.kind]: 'network' } })
      .then(
        () => undefined,
        (e: unknown) => {
          if (statusOf(e) === 409) return;
          this.overlay = undefined;
          throw e;
        },
      );
    return this.overlay;
  }
}

function startError(e: unknown): Error {
  const status = statusOf(e);
  if (status === 400 || status === 404) return errors.badRequest(`the swarm refused the service: ${engineMessage(e)}`);
  if (status === 503) return errors.driverUnavailable(`the Docker engine is not a swarm manager: ${engineMessage(e)}`);
  if (status === undefined) return e as Error;
  return errors.driverUnavailable(`the Docker engine failed: ${engineMessage(e)}`);
}
