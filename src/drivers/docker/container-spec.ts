/**
 * How a workload becomes a container: the create options for an instance's container and the
 * host settings jobs share. Everything corral relies on for isolation is set here, in one place:
 * Docker's restart policy off (corral's supervisor decides), an init process (signals reach the
 * workload, zombies are reaped), no capabilities, no new privileges, a read-only root with a
 * private /tmp, limits, and ports published on 127.0.0.1 only.
 */
import type { ContainerCreateOptions, HostConfig } from 'dockerode';
import { errors } from '../../core/errors.js';
import type { Isolation, Limits, WorkloadSpec } from '../driver.js';
import type { DockerConfig } from './config.js';
import { LABEL, type ContainerKind } from './labels.js';

export interface ContainerSettings {
  serverId: string;
  /** `uid:gid` workloads run as; '' = the image's user. */
  user: string;
  /** Bridge network for workloads with network access. */
  network: string;
  tmpBytes: number;
}

export const containerSettings = (serverId: string, c: DockerConfig): ContainerSettings => ({
  serverId,
  user: c.user,
  network: c.network,
  tmpBytes: c.tmpBytes,
});

/**
 * The numeric owner a host dir needs so the container's user may write to it; undefined when
 * the image's user applies ('') or the user is a name only the image knows.
 */
export function hostOwner(user: string): { uid: number; gid: number } | undefined {
  const m = /^(\d+)(?::(\d+))?$/.exec(user);
  return m ? { uid: Number(m[1]), gid: Number(m[2] ?? m[1]) } : undefined;
}

/** Limits, isolation and hygiene common to instances and jobs. */
export function hostConfig(s: ContainerSettings, limits: Limits, network: boolean): HostConfig {
  return {
    Init: true,
    RestartPolicy: { Name: 'no' },
    ReadonlyRootfs: true,
    // mode=1777: without it the engine makes the tmpfs root-owned 0755, and the workload's user could not write there.
    Tmpfs: { '/tmp': `rw,nosuid,nodev,mode=1777,size=${s.tmpBytes}` },
    CapDrop: ['ALL'],
    SecurityOpt: ['no-new-privileges'],
    NetworkMode: network ? s.network : 'none',
    // corral keeps its own logs; the engine keeps only a little (for `docker logs`).
    LogConfig: { Type: 'json-file', Config: { 'max-size': '1m', 'max-file': '1' } },
    ...(limits.memoryBytes !== undefined && { Memory: limits.memoryBytes, MemorySwap: limits.memoryBytes }),
    ...(limits.cpus !== undefined && { NanoCpus: Math.round(limits.cpus * 1e9) }),
    ...(limits.pids !== undefined && { PidsLimit: limits.pids }),
  };
}

export function labels(s: ContainerSettings, kind: ContainerKind, owner: string, extra: Record<string, string> = {}): Record<string, string> {
  return { [LABEL.server]: s.serverId, [LABEL.kind]: kind, [LABEL.owner]: owner, ...extra };
}

/** The container name of an instance's generation: a second create of the same one fails (no duplicates). */
export const instanceContainerName = (s: ContainerSettings, spec: WorkloadSpec) =>
  `corral-${s.serverId}-${spec.instanceId}-${spec.generation}`.replace(/[^a-zA-Z0-9_.-]/g, '-');

export function instanceContainer(spec: WorkloadSpec, image: string, s: ContainerSettings): ContainerCreateOptions {
  const tcp = (p: { containerPort: number }) => `${p.containerPort}/tcp`;
  return {
    name: instanceContainerName(s, spec),
    Image: image,
    // The spec's command is the whole argv: the image's entrypoint does not wrap it.
    Entrypoint: [],
    Cmd: spec.command,
    Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
    WorkingDir: spec.cwd,
    ...(s.user && { User: s.user }),
    Hostname: spec.instanceId.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 63),
    Labels: labels(s, 'instance', spec.owner, { [LABEL.instance]: spec.instanceId, [LABEL.generation]: String(spec.generation) }),
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    OpenStdin: true,
    StdinOnce: false,
    Tty: false,
    ExposedPorts: Object.fromEntries(spec.ports.map((p) => [tcp(p), {}])),
    HostConfig: {
      ...hostConfig(s, spec.limits, spec.network),
      Mounts: [
        { Type: 'bind', Source: spec.dataDir, Target: spec.dataMount, ReadOnly: false },
        ...spec.mounts.map((m) => ({ Type: 'bind' as const, Source: m.source, Target: m.target, ReadOnly: m.readOnly })),
      ],
      PortBindings: Object.fromEntries(spec.ports.map((p) => [tcp(p), [{ HostIp: '127.0.0.1', HostPort: String(p.hostPort) }]])),
    },
  };
}

/** Containers isolate everything Isolation names; the notes say how each driver does it. */
export const containerIsolation = (notes: string[]): Isolation => ({
  filesystem: true,
  processes: true,
  network: true,
  memory: true,
  cpu: true,
  pids: true,
  notes: [...notes, 'disk: no quota on the data dir; corral measures it on a timer and stops an instance over its diskBytes'],
});

/** The image a workload runs: its own, or the configured default. */
export function imageOf(spec: WorkloadSpec, c: DockerConfig, driver: string): string {
  const image = spec.image ?? c.defaultImage;
  if (!image) throw errors.badRequest(`the ${driver} driver needs an image: set "image" or drivers.docker.defaultImage`);
  return image;
}
