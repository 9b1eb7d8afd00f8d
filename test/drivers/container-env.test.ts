/**
 * Containers get their spec's environment only (the isolation issue, item 1): the docker
 * container and the swarm service corral asks for carry exactly the spec's env, nothing of
 * the server's (a canary is put in this process's env first). The engine adds only what
 * the image sets. Checked on the create options, so no engine is needed.
 */
import { describe, expect, it } from 'vitest';
import { instanceContainer, type ContainerSettings } from '../../src/drivers/docker/container-spec.js';
import { instanceService, TMP_DIR } from '../../src/drivers/swarm/service-spec.js';
import type { WorkloadSpec } from '../../src/drivers/driver.js';

const CANARY = `canary-${process.pid}-containers`;
process.env.CORRAL_TEST_CANARY = CANARY;
process.env.CORRAL_ADMIN_PASSWORD = CANARY;

const settings: ContainerSettings = { serverId: 'abc123', user: '65534:65534', network: 'corral', tmpBytes: 1 << 20 };
const spec: WorkloadSpec = {
  instanceId: 'i1',
  owner: 'alice',
  generation: 1,
  command: ['sh', '-c', 'env'],
  env: { PATH: '/usr/bin:/bin', HOME: '/data', PORT: '8000', GREETING: 'hello world' },
  cwd: '/data',
  dataDir: '/srv/corral/instances/i1/data',
  dataMount: '/data',
  mounts: [],
  ports: [{ name: 'web', containerPort: 8000, hostPort: 8000 }],
  limits: {},
  network: true,
};
const specEnv = Object.entries(spec.env).map(([k, v]) => `${k}=${v}`);

describe('container environments', () => {
  it('a docker instance container carries exactly its spec env', () => {
    const env = instanceContainer(spec, 'busybox', settings).Env!;
    expect(env.sort()).toEqual([...specEnv].sort());
    expect(env.join('\n')).not.toContain(CANARY);
  });

  it('a swarm service carries its spec env (and its TMPDIR), nothing else', () => {
    const task = instanceService(spec, 'busybox', settings, { overlay: 'overlay', noNewPrivileges: true }).TaskTemplate as { ContainerSpec: { Env: string[] } };
    const env = task.ContainerSpec.Env;
    expect(env.sort()).toEqual([...specEnv, `TMPDIR=/data/${TMP_DIR}`].sort());
    expect(env.join('\n')).not.toContain(CANARY);
  });
});
