/**
 * The swarm driver: each instance generation is a one-replica Docker swarm service (limits,
 * labels, ports published through the ingress mesh, the overlay network), placed by the swarm
 * on any node that can run it. corral follows the task through the swarm — its state from the
 * service's tasks, its output from the service's log (./swarm-workload.ts) — so it needs no
 * access to the node that runs it. With `pinToLocalNode`, tasks stay on the node of corral's
 * engine and stdin reaches them. Swarm's own restart policy is off: corral's supervisor
 * restarts a workload that ended, with its backoff, as a new service.
 */
import { createHash } from 'node:crypto';
import { chown, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type Docker from 'dockerode';
import { errors } from '../../core/errors.js';
import type { Driver, Handle, Isolation, Workload, WorkloadSink, WorkloadSpec } from '../driver.js';
import type { DockerConfig } from '../docker/config.js';
import { containerIsolation, containerSettings, hostOwner, imageOf, type ContainerSettings } from '../docker/container-spec.js';
import { engineMessage, ensureImage, statusOf, type Engine } from '../docker/engine.js';
import { LABEL } from '../docker/labels.js';
import { DEFAULT_PORTS_SUBNET } from './config.js';
import { PortRelay, type RelayedPort } from './port-relay.js';
import { addressOn, ensurePortsNetwork, PORTS_NETWORK } from './ports-network.js';
import { newPrivilegesRefused, noNewPrivilegesNote, setsNoNewPrivileges } from './privileges.js';
import { instanceService, TMP_DIR } from './service-spec.js';
import { attachStdin, ServiceOutput } from './task-io.js';
import { serviceTasks, taskEnded, taskStarted, type SwarmTask } from './tasks.js';
import { SwarmWorkload } from './swarm-workload.js';

const DRIVER = 'swarm';
/** How long a new service may take to get a container on a node. */
const TASK_START_MS = 60_000;
const TASK_POLL_MS = 200;
/**
 * The attachable overlay network of one owner's services with network access. An overlay
 * cannot turn traffic between its containers off (the docker driver's bridge does), so each
 * owner gets their own and one user's tasks cannot reach another's.
 */
export const overlayOf = (owner: string): string => `corral-swarm-${createHash('sha256').update(owner).digest('hex').slice(0, 16)}`;

export interface SwarmDriverOptions {
  engine: Engine;
  serverId: string;
  /** The docker driver's settings (image allow-list, user, pull) apply to services too. */
  config: DockerConfig;
  /** Keep tasks on the node of `engine` (so stdin reaches them); default: anywhere. */
  pinToLocalNode?: boolean;
  /** Run tasks without no-new-privileges when the engine cannot set it (privileges.ts). */
  allowNewPrivileges?: boolean;
  /** Subnet of the network tasks with ports are reached on (ports-network.ts). */
  portsSubnet?: string;
}

/** A handle keeps the relayed ports as "hostPort:containerPort,…" (handles hold plain values). */
const portsOf = (h: Handle): RelayedPort[] =>
  typeof h.ports === 'string' && h.ports
    ? h.ports.split(',').map((p) => {
        const [hostPort, containerPort] = p.split(':').map(Number);
        return { hostPort: hostPort!, containerPort: containerPort! };
      })
    : [];

export class SwarmDriver implements Driver {
  readonly name = DRIVER;
  private readonly live = new Set<SwarmWorkload>();
  private readonly settings: ContainerSettings;
  private readonly overlays = new Map<string, Promise<void>>();
  private node?: Promise<string>;
  private api?: Promise<string>;
  private portsNetwork?: Promise<void>;

  constructor(private readonly opts: SwarmDriverOptions) {
    this.settings = containerSettings(opts.serverId, opts.config);
  }

  private get engine(): Engine {
    return this.opts.engine;
  }

  async isolation(): Promise<Isolation> {
    return containerIsolation([
      'swarm: one service per instance generation; the container has its own namespaces, a read-only root, a private /tmp and only the data dir bind-mounted',
      `runs as ${this.settings.user || "the image's user"}; no capabilities; ${noNewPrivilegesNote(await this.apiVersion(), !!this.opts.allowNewPrivileges).text}`,
      '/tmp is read-only to the workload (swarm ignores the tmpfs mode): TMPDIR points into the data dir',
      'network: none when network=false; else an attachable overlay per owner (corral-swarm-<hash of the owner>), so one user\'s tasks cannot reach another\'s',
      `ports: none published; a task with ports runs on this engine's node on the internal "${PORTS_NETWORK}" bridge (traffic between its containers off) and corral relays 127.0.0.1:<hostPort> to it`,
      this.opts.pinToLocalNode
        ? "tasks are pinned to this engine's node"
        : 'tasks without ports run on any node of the swarm; stdin does not reach them, and signals only reach tasks on this node',
    ]);
  }

  /** Refuses when tasks would lack no-new-privileges and the admin did not accept it; else whether to set it. */
  async noNewPrivileges(): Promise<boolean> {
    const api = await this.apiVersion();
    if (setsNoNewPrivileges(api)) return true;
    if (!this.opts.allowNewPrivileges) throw newPrivilegesRefused(api);
    return false;
  }

  async start(spec: WorkloadSpec, sink: WorkloadSink): Promise<Workload> {
    const noNewPrivileges = await this.noNewPrivileges();
    const image = imageOf(spec, this.opts.config, 'swarm');
    await ensureImage(this.engine, image, { pull: this.opts.config.pull });
    const overlay = overlayOf(spec.owner);
    if (spec.network) await this.ensureOverlay(overlay, spec.owner);
    const tmp = path.join(spec.dataDir, TMP_DIR);
    await mkdir(tmp, { recursive: true, mode: 0o700 });
    const owner = hostOwner(this.settings.user);
    if (owner) for (const dir of [spec.dataDir, tmp]) await chown(dir, owner.uid, owner.gid);
    // A task with ports runs on this node, on the ports network, where the relay reaches it.
    const ports = spec.ports.length > 0;
    if (ports) await this.ensurePortsNetwork();
    const create = instanceService(spec, image, this.settings, {
      overlay,
      pinTo: this.opts.pinToLocalNode || ports ? await this.localNode() : undefined,
      portsNetwork: ports ? PORTS_NETWORK : undefined,
      noNewPrivileges,
    });
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
      const task = await this.startedTask(service.id);
      const handle: Handle = {
        driver: DRIVER,
        instanceId: spec.instanceId,
        generation: spec.generation,
        serviceId: service.id,
        taskId: task.ID,
        containerId: task.Status!.ContainerStatus!.ContainerID!,
        ports: spec.ports.map((p) => `${p.hostPort}:${p.containerPort}`).join(','),
      };
      return await this.watch(handle, service, task, sink, 0);
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
    const task = (await serviceTasks(this.engine, handle.serviceId)).find((t) => t.ID === handle.taskId || t.Status?.ContainerStatus?.ContainerID === handle.containerId);
    if (!task || taskEnded(task)) {
      await service.remove().catch(() => undefined);
      return undefined;
    }
    return this.watch(handle, service, task, sink, Math.floor(Date.now() / 1000));
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
    for (const w of this.live) w.detach();
    this.live.clear();
  }

  /** The service's task once the swarm has created its container; a task that failed to start is an error. */
  private async startedTask(serviceId: string): Promise<SwarmTask> {
    const deadline = Date.now() + TASK_START_MS;
    while (Date.now() < deadline) {
      for (const t of await serviceTasks(this.engine, serviceId)) {
        if (taskStarted(t)) return t;
        if (['rejected', 'failed'].includes(t.Status?.State ?? '')) {
          throw errors.badRequest(`the swarm could not start the service: ${t.Status?.Err ?? t.Status?.State}`);
        }
      }
      await sleep(TASK_POLL_MS);
    }
    throw errors.driverUnavailable(`the swarm did not start a task within ${TASK_START_MS / 1000} s (no node can run it?)`);
  }

  /** Follows the task's output (from `sinceSeconds`; 0 = the first line) and state. */
  private async watch(handle: Handle, service: Docker.Service, task: SwarmTask, sink: WorkloadSink, sinceSeconds: number): Promise<SwarmWorkload> {
    const local = task.NodeID === (await this.localNode());
    const container = task.Status!.ContainerStatus!.ContainerID!;
    const output = await ServiceOutput.open(service, (stream, chunk) => sink.output(stream, chunk), sinceSeconds);
    const stdin = this.opts.pinToLocalNode && local ? await attachStdin(this.engine.getContainer(container)) : undefined;
    const relay = await this.relay(handle, local ? container : undefined);
    const w: SwarmWorkload = new SwarmWorkload(handle, this.engine, service, task, local, { output, stdin }, sink, async (ended) => {
      relay?.close();
      this.live.delete(w);
      // The generation is over once its task ended (not when we only let go of it).
      if (ended) await service.remove().catch(() => undefined);
    });
    this.live.add(w);
    return w;
  }

  /** This engine's swarm node: a task there is reached through the engine (signals, stats, stdin when pinned). */
  private localNode(): Promise<string> {
    this.node ??= this.engine.info().then((i: { Swarm?: { NodeID?: string } }) => {
      if (!i.Swarm?.NodeID) throw errors.driverUnavailable('the Docker engine is not part of a swarm (docker swarm init)');
      return i.Swarm.NodeID;
    });
    this.node.catch(() => (this.node = undefined));
    return this.node;
  }

  /** Forwards 127.0.0.1:<hostPort> to the task on the ports network (tasks with ports run on this node). */
  private async relay(handle: Handle, container: string | undefined): Promise<PortRelay | undefined> {
    const ports = portsOf(handle);
    if (!ports.length) return undefined;
    const address = container && addressOn(await this.engine.getContainer(container).inspect());
    if (!address) throw errors.driverUnavailable(`the swarm task of ${String(handle.instanceId)} has no address on ${PORTS_NETWORK} on this node`);
    return new PortRelay(ports, address);
  }

  private ensurePortsNetwork(): Promise<void> {
    this.portsNetwork ??= ensurePortsNetwork(this.engine, this.opts.portsSubnet ?? DEFAULT_PORTS_SUBNET);
    this.portsNetwork.catch(() => (this.portsNetwork = undefined));
    return this.portsNetwork;
  }

  /** The engine's API version (what it can set on a service). */
  private apiVersion(): Promise<string> {
    this.api ??= this.engine.version().then((v) => v.ApiVersion);
    this.api.catch(() => (this.api = undefined));
    return this.api;
  }

  private ensureOverlay(name: string, owner: string): Promise<void> {
    let made = this.overlays.get(name);
    if (!made) {
      made = this.engine
        .createNetwork({ Name: name, Driver: 'overlay', Attachable: true, CheckDuplicate: true, Labels: { [LABEL.kind]: 'network', [LABEL.owner]: owner } })
        .then(
          () => undefined,
          (e: unknown) => {
            if (statusOf(e) === 409) return; // made by another corral manager, or before a restart
            this.overlays.delete(name);
            throw e;
          },
        );
      this.overlays.set(name, made);
    }
    return made;
  }
}

function startError(e: unknown): Error {
  const status = statusOf(e);
  if (status === 400 || status === 404) return errors.badRequest(`the swarm refused the service: ${engineMessage(e)}`);
  if (status === 503) return errors.driverUnavailable(`the Docker engine is not a swarm manager: ${engineMessage(e)}`);
  if (status === undefined) return e as Error;
  return errors.driverUnavailable(`the Docker engine failed: ${engineMessage(e)}`);
}
