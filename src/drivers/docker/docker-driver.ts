/**
 * The docker driver: each instance generation is one container on a Docker engine, labelled
 * with the server, owner, instance and generation (see labels.ts). Containers outlive the
 * server: a restarted server re-adopts the running ones by handle (checked against the
 * labels) and removes the ones it owns that no instance claims (list() → the supervisor).
 *
 * The engine must run on this machine: data dirs and sources are bind-mounted from corral's
 * data dir. What it isolates is in docs/docker.md.
 */
import { chown, mkdir } from 'node:fs/promises';
import type Docker from 'dockerode';
import { errors } from '../../core/errors.js';
import type { Driver, Handle, Isolation, Workload, WorkloadSink, WorkloadSpec } from '../driver.js';
import type { DockerConfig } from './config.js';
import { containerIsolation, containerSettings, hostOwner, imageOf, instanceContainer, type ContainerSettings } from './container-spec.js';
import { attach, removeContainer } from './container-io.js';
import { DockerWorkload } from './docker-workload.js';
import { engineMessage, ensureImage, statusOf, type Engine } from './engine.js';
import { LABEL, ownedBy } from './labels.js';
import { networkEnsurer } from './network.js';

const DRIVER = 'docker';

export interface DockerDriverOptions {
  engine: Engine;
  /** Tells this server's containers from other servers' on a shared engine. */
  serverId: string;
  config: DockerConfig;
}

export class DockerDriver implements Driver {
  readonly name = DRIVER;
  private readonly live = new Set<DockerWorkload>();
  private readonly settings: ContainerSettings;
  private readonly ensureNetwork: () => Promise<void>;

  constructor(private readonly opts: DockerDriverOptions) {
    this.settings = containerSettings(opts.serverId, opts.config);
    this.ensureNetwork = networkEnsurer(opts.engine, opts.config.network);
  }

  get engine(): Engine {
    return this.opts.engine;
  }

  async isolation(): Promise<Isolation> {
    return containerIsolation([
      'docker: own namespaces per container; read-only root and private /tmp; only the data dir (and source) bind-mounted',
      `runs as ${this.settings.user || "the image's user"} with no capabilities and no-new-privileges`,
      `network: none when network=false; else the "${this.settings.network}" bridge with traffic between containers off; ports on 127.0.0.1 only`,
    ]);
  }

  async start(spec: WorkloadSpec, sink: WorkloadSink): Promise<Workload> {
    const image = imageOf(spec, this.opts.config, 'docker');
    await ensureImage(this.engine, image, {
      pull: this.opts.config.pull,
      onProgress: (line) => sink.output('stderr', Buffer.from(`[corral] pulling ${image}: ${line}\n`)),
    });
    if (spec.network) await this.ensureNetwork();
    await this.prepareDataDir(spec.dataDir);
    const create = instanceContainer(spec, image, this.settings);
    let container: Docker.Container;
    try {
      container = await this.engine.createContainer(create);
    } catch (e) {
      if (statusOf(e) !== 409) throw startError(e);
      // Left by a server that died between create and recording the handle: not ours to keep.
      await removeContainer(this.engine.getContainer(create.name!));
      container = await this.engine.createContainer(create).catch((e2: unknown) => Promise.reject(startError(e2)));
    }
    try {
      const io = await attach(container, false, (stream, chunk) => sink.output(stream, chunk));
      await container.start();
      const handle: Handle = { driver: DRIVER, instanceId: spec.instanceId, generation: spec.generation, containerId: container.id };
      return this.watch(handle, container, io, sink);
    } catch (e) {
      await removeContainer(container).catch(() => undefined);
      throw startError(e);
    }
  }

  async adopt(handle: Handle, sink: WorkloadSink): Promise<Workload | undefined> {
    if (handle.driver !== DRIVER || typeof handle.containerId !== 'string') return undefined;
    const container = this.engine.getContainer(handle.containerId);
    let info: Docker.ContainerInspectInfo;
    try {
      info = await container.inspect();
    } catch (e) {
      if (statusOf(e) === 404) return undefined;
      throw e;
    }
    // The handle comes from corral's store; the labels must agree that it is that generation
    // of that instance (another manager sharing the database may have started it).
    const l = info.Config.Labels ?? {};
    if (l[LABEL.instance] !== String(handle.instanceId) || l[LABEL.generation] !== String(handle.generation)) return undefined;
    if (!info.State.Running) {
      // It ended while no server watched: gone, and the supervisor starts it again.
      await removeContainer(container);
      return undefined;
    }
    const io = await attach(container, !!info.Config.Tty, (stream, chunk) => sink.output(stream, chunk));
    return this.watch(handle, container, io, sink);
  }

  async list(): Promise<Handle[]> {
    const found = await this.engine.listContainers({ all: true, filters: ownedBy(this.opts.serverId, 'instance') });
    return found.map((c) => ({
      driver: DRIVER,
      instanceId: c.Labels[LABEL.instance] ?? null,
      generation: Number(c.Labels[LABEL.generation] ?? 0),
      containerId: c.Id,
    }));
  }

  /** Lets go of the containers without stopping them: the next server re-adopts them. */
  async close(): Promise<void> {
    for (const w of this.live) w.detach();
    this.live.clear();
  }

  private watch(handle: Handle, container: Docker.Container, io: Awaited<ReturnType<typeof attach>>, sink: WorkloadSink): DockerWorkload {
    const w: DockerWorkload = new DockerWorkload(handle, container, io, sink, () => this.live.delete(w));
    this.live.add(w);
    return w;
  }

  /** The data dir exists and belongs to the user the container runs as. */
  private async prepareDataDir(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const owner = hostOwner(this.settings.user);
    if (owner) await chown(dir, owner.uid, owner.gid);
  }
}

/** An engine refusal at create/start, as a corral error (a bad mount or limit is the request's fault). */
function startError(e: unknown): Error {
  const status = statusOf(e);
  if (status === 400 || status === 404) return errors.badRequest(`the Docker engine refused the container: ${engineMessage(e)}`);
  if (status === undefined) return e as Error;
  return errors.driverUnavailable(`the Docker engine failed: ${engineMessage(e)}`);
}
