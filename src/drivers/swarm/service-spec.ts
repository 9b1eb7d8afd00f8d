/**
 * How a workload becomes a swarm service: one replica of the same container the docker
 * driver would create (image, argv, env, user, labels, mounts, limits, no capabilities — see
 * ../docker/container-spec.ts), with swarm's restart policy off (corral's supervisor
 * restarts, with its backoff), stdin open, no published port (swarm would publish on every
 * interface): a task with ports joins the internal ports network instead and is pinned to
 * corral's node, where the driver relays 127.0.0.1:<hostPort> to it (ports-network.ts). No
 * network beyond that unless the spec asks for one, and no placement constraint unless the
 * driver pins tasks to its node.
 *
 * Swarm on Docker 20.10 ignores a tmpfs mount's mode, so its /tmp belongs to root and the
 * workload's user cannot write there: TMPDIR points at TMP_DIR in the data dir instead.
 */
import type Docker from 'dockerode';
import type { WorkloadSpec } from '../driver.js';
import { instanceContainer, type ContainerSettings } from '../docker/container-spec.js';

/** Made by the driver in the data dir, owned by the workload's user. */
export const TMP_DIR = '.tmp';

export interface ServiceOptions {
  /** The attachable overlay of the owner (tasks with network access). */
  overlay: string;
  /** The swarm node id the task must run on; undefined = wherever the swarm places it. */
  pinTo?: string;
  /** The ports network, for a task with ports (then pinTo must be set). */
  portsNetwork?: string;
  /** Set ContainerSpec.Privileges.NoNewPrivileges (engines whose API has it, privileges.ts). */
  noNewPrivileges: boolean;
}

export function instanceService(spec: WorkloadSpec, image: string, s: ContainerSettings, o: ServiceOptions): Docker.CreateServiceOptions {
  const { overlay, pinTo } = o;
  const c = instanceContainer(spec, image, s);
  const host = c.HostConfig!;
  return {
    Name: c.name!,
    Labels: c.Labels,
    TaskTemplate: {
      ContainerSpec: {
        Image: image,
        Command: c.Cmd as string[], // replaces the image's entrypoint, as the docker driver does
        Env: spec.env.TMPDIR ? c.Env : [...(c.Env ?? []), `TMPDIR=${spec.dataMount}/${TMP_DIR}`],
        Dir: c.WorkingDir,
        ...(c.User && { User: c.User }),
        Hostname: c.Hostname,
        Labels: c.Labels,
        OpenStdin: true,
        Init: true,
        // As the docker driver (API 1.41+); no-new-privileges only on engines whose API has it.
        CapabilityDrop: host.CapDrop,
        ...(o.noNewPrivileges && { Privileges: { NoNewPrivileges: true } }),
        ReadOnly: true,
        Mounts: [
          ...(host.Mounts ?? []).map((m) => ({ Type: 'bind' as const, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly })),
          { Type: 'tmpfs' as const, Target: '/tmp', TmpfsOptions: { SizeBytes: s.tmpBytes } },
        ],
      },
      Resources: {
        Limits: {
          ...(host.Memory !== undefined && { MemoryBytes: host.Memory }),
          ...(host.NanoCpus !== undefined && { NanoCPUs: host.NanoCpus }),
          ...(host.PidsLimit !== undefined && host.PidsLimit !== null && { Pids: host.PidsLimit }),
        },
      },
      RestartPolicy: { Condition: 'none' },
      ...(pinTo && { Placement: { Constraints: [`node.id==${pinTo}`] } }),
      LogDriver: { Name: 'json-file', Options: { 'max-size': '1m', 'max-file': '1' } },
      Networks: [...(o.portsNetwork ? [{ Target: o.portsNetwork }] : []), ...(spec.network ? [{ Target: overlay }] : [])],
    },
    EndpointSpec: { Ports: [] },
  } as Docker.CreateServiceOptions;
}
