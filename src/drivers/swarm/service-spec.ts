/**
 * How a workload becomes a swarm service: one replica of the same container the docker
 * driver would create (image, argv, env, user, labels, mounts, limits — see
 * ../docker/container-spec.ts), with swarm's restart policy off (corral's supervisor
 * restarts, with its backoff), stdin open, ports published on the node that runs the task
 * (host mode), and no network unless the spec asks for one.
 */
import type Docker from 'dockerode';
import type { WorkloadSpec } from '../driver.js';
import { instanceContainer, type ContainerSettings } from '../docker/container-spec.js';

export function instanceService(spec: WorkloadSpec, image: string, s: ContainerSettings, overlay: string): Docker.CreateServiceOptions {
  const c = instanceContainer(spec, image, s);
  const host = c.HostConfig!;
  return {
    Name: c.name!,
    Labels: c.Labels,
    TaskTemplate: {
      ContainerSpec: {
        Image: image,
        Command: c.Cmd as string[], // replaces the image's entrypoint, as the docker driver does
        Env: c.Env,
        Dir: c.WorkingDir,
        ...(c.User && { User: c.User }),
        Hostname: c.Hostname,
        Labels: c.Labels,
        OpenStdin: true,
        Init: true,
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
      LogDriver: { Name: 'json-file', Options: { 'max-size': '1m', 'max-file': '1' } },
      ...(spec.network && { Networks: [{ Target: overlay }] }),
    },
    EndpointSpec: {
      Ports: spec.ports.map((p) => ({ Protocol: 'tcp' as const, TargetPort: p.containerPort, PublishedPort: p.hostPort, PublishMode: 'host' as const })),
    },
  } as Docker.CreateServiceOptions;
}
