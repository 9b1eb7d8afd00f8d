/**
 * Docker job containers reused under the jobs issue's rules, on a real engine: one owner's
 * jobs share a container, another owner never gets it; nothing of a job survives into the
 * next (processes, /tmp, /dev/shm, /work, System V IPC, variables, umask); a container is
 * retired after a timeout, a memory kill, an output limit, a kill, `jobsPerContainer` jobs and
 * idle time; each job reports its CPU time and memory peak from the container's cgroup.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobSpec } from '../../src/core/jobs/runner.js';
import { DockerConfigSchema, type DockerConfig } from '../../src/drivers/docker/config.js';
import { connectEngine } from '../../src/drivers/docker/engine.js';
import { DockerJobRunner } from '../../src/drivers/docker/job-runner.js';
import { LABEL } from '../../src/drivers/docker/labels.js';
import { BUSYBOX_IMAGE, PYTHON_IMAGE } from '../helpers/docker-images.js';
import { describeDocker } from '../helpers/docker.js';

const MiB = 1024 * 1024;
const LIMITS = { memoryBytes: 64 * MiB, pids: 32, cpus: 1, fileSizeBytes: 4 * MiB, openFiles: 64 };

const spec = (owner: string, command: string, extra: Partial<JobSpec> = {}): JobSpec => ({
  id: randomBytes(4).toString('hex'),
  owner,
  command,
  files: [],
  keepStdinOpen: false,
  timeoutMs: 10_000,
  limits: { ...LIMITS, outputBytes: 64 * 1024 },
  network: false,
  readOnlyPaths: [],
  image: BUSYBOX_IMAGE,
  maxOutputFileBytes: 1024,
  ...extra,
});

describeDocker('docker jobs: containers reused for one owner', () => {
  /** One server id per runner: a runner removes the job containers of its id it finds at start. */
  const serverIds: string[] = [];
  let root: string;
  const runners: DockerJobRunner[] = [];
  const errors: unknown[] = [];
  const makeRunner = async (extra: Partial<DockerConfig> = {}) => {
    const serverId = `j${randomBytes(5).toString('hex')}`;
    serverIds.push(serverId);
    const r = await DockerJobRunner.create({
      engine: connectEngine(),
      serverId,
      config: { ...(Value.Default(DockerConfigSchema, {}) as DockerConfig), pull: false, warmContainers: 1, ...extra },
      root: path.join(root, `r${runners.length}`),
      warmImages: [BUSYBOX_IMAGE],
      defaults: LIMITS,
      onError: (e) => errors.push(e),
    });
    runners.push(r);
    return r;
  };
  let runner: DockerJobRunner;
  const job = async (r: DockerJobRunner, s: JobSpec) => {
    const res = await (await r.run(s, () => {})).done;
    // The box goes back to the pool after its work dir is emptied: let that happen.
    await r.settled();
    return { ...res, out: res.stdout.toString(), err: res.stderr.toString() };
  };
  const exists = (id: string) => connectEngine().getContainer(id).inspect().then(() => true, () => false);

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'corral-docker-jobs-'));
    runner = await makeRunner();
  });
  afterAll(async () => {
    for (const r of runners) await r.close();
    for (const serverId of serverIds) {
      const left = await connectEngine().listContainers({ all: true, filters: JSON.stringify({ label: [`${LABEL.server}=${serverId}`] }) });
      expect(left.filter((c) => c.State === 'running'), 'closed runners leave no container').toEqual([]);
      await Promise.all(left.map((c) => connectEngine().getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
    }
    await rm(root, { recursive: true, force: true });
    expect(errors).toEqual([]);
  });

  it("runs one owner's jobs in one container, resetting it between them; another owner never gets it", async () => {
    // The first job leaves everything it can behind.
    const dirty = await job(
      runner,
      spec('alice', [
        'echo secret > /work/left.txt; echo secret > /tmp/left; echo secret > /dev/shm/left; mkdir /tmp/.hidden',
        'sleep 300 & (sleep 300 &) & setsid sleep 300 & nohup sleep 300 >/dev/null 2>&1 &',
        'export LEFT=1; umask 077; cd /tmp',
        'echo first',
      ].join('\n')),
    );
    expect(dirty).toMatchObject({ status: 'ok', out: 'first\n' });
    const [box] = runner.idleOf('alice');
    expect(box).toMatchObject({ jobs: 1 });

    const next = await job(
      runner,
      spec('alice', [
        'set -- /proc/[0-9]*; echo $#',
        'ls -A /work /tmp /dev/shm',
        'umask; pwd; echo "LEFT=$LEFT"',
        // [s]: grep's own command line (which ps may list) does not match.
        'ps -o user,args 2>/dev/null | grep -c "[s]leep 300" || true',
      ].join('\n')),
    );
    expect(next.status).toBe('ok');
    expect(next.out).toBe(['3', '/dev/shm:', '', '/tmp:', '', '/work:', '0022', '/work', 'LEFT=', '0', ''].join('\n'));
    // (The count: the init, the agent and this job's shell.) The same container ran it.
    expect(runner.idleOf('alice')).toEqual([{ ...box, jobs: 2 }]);

    // bob's job gets another container, and alice's stays hers.
    await job(runner, spec('bob', 'echo bob'));
    const [bobs] = runner.idleOf('bob');
    expect(bobs?.containerId).toBeDefined();
    expect(bobs!.containerId).not.toBe(box!.containerId);
    expect(runner.idleOf('alice').map((b) => b.containerId)).toEqual([box!.containerId]);
  });

  it('a job with its own limits gets a container of that profile, reused for it only', async () => {
    const big = { limits: { ...LIMITS, memoryBytes: 96 * MiB, outputBytes: 64 * 1024 } };
    await job(runner, spec('carol', 'true', big));
    await job(runner, spec('carol', 'true'));
    const boxes = runner.idleOf('carol');
    expect(boxes).toHaveLength(2);
    await job(runner, spec('carol', 'true', big));
    expect(runner.idleOf('carol').map((b) => b.jobs).sort()).toEqual([1, 2]);
    const limits = await Promise.all(boxes.map(async (b) => (await connectEngine().getContainer(b.containerId).inspect()).HostConfig.Memory));
    expect(limits.sort((a, b) => a! - b!)).toEqual([64 * MiB, 96 * MiB]);
  });

  for (const [status, s] of [
    ['timeout', spec('dave', 'echo start; sleep 30', { timeoutMs: 500 })],
    ['output-limit', spec('dave', 'yes', { limits: { ...LIMITS, outputBytes: 1024 } })],
    ['memory', spec('dave', 'dd if=/dev/zero of=/dev/null bs=100M count=1', { limits: { ...LIMITS, memoryBytes: 32 * MiB, outputBytes: 4096 } })],
    ['killed', spec('dave', 'kill -9 $$')],
  ] as const) {
    it(`retires the container after a job that ended in ${status}`, async () => {
      await job(runner, spec('dave', 'true', { limits: s.limits }));
      const [before] = runner.idleOf('dave').filter((b) => b.jobs === 1);
      expect(before).toBeDefined();
      const r = await job(runner, s);
      expect(r.status).toBe(status);
      expect(runner.idleOf('dave').map((b) => b.containerId)).not.toContain(before!.containerId);
      await expect.poll(() => exists(before!.containerId), { timeout: 10_000 }).toBe(false);
    });
  }

  it('retires a container left with a System V IPC object', async () => {
    const py = (owner: string, code: string) => spec(owner, `python3 -c '${code}'`, { image: PYTHON_IMAGE });
    await job(runner, py('erin', 'print(1)'));
    const [before] = runner.idleOf('erin');
    // shmget(IPC_PRIVATE, 4096, IPC_CREAT|0600): a segment that outlives its process.
    const r = await job(runner, py('erin', 'import ctypes; print(ctypes.CDLL(None).shmget(0, 4096, 0o1600) >= 0)'));
    expect(r).toMatchObject({ status: 'ok', out: 'True\n' });
    expect(runner.idleOf('erin')).toEqual([]);
    await expect.poll(() => exists(before!.containerId), { timeout: 10_000 }).toBe(false);
  });

  it('retires a container after jobsPerContainer jobs, and after idle time', async () => {
    const r = await makeRunner({ jobsPerContainer: 2, containerIdleSeconds: 1 });
    await job(r, spec('frank', 'true'));
    const [first] = r.idleOf('frank');
    await job(r, spec('frank', 'true'));
    expect(r.idleOf('frank')).toEqual([]); // its second job was its last
    await expect.poll(() => exists(first!.containerId), { timeout: 10_000 }).toBe(false);
    await job(r, spec('frank', 'true'));
    const [second] = r.idleOf('frank');
    expect(second!.containerId).not.toBe(first!.containerId);
    await expect.poll(() => r.idleOf('frank').length, { timeout: 5000 }).toBe(0);
    await expect.poll(() => exists(second!.containerId), { timeout: 10_000 }).toBe(false);
  });

  it("reports each job's CPU time and memory peak, counted for that job alone", async () => {
    const burn = await job(runner, spec('gina', 'i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; dd if=/dev/zero of=/dev/null bs=24M count=1 2>/dev/null'));
    expect(burn.status).toBe('ok');
    expect(burn.cpuMs).toBeGreaterThan(50);
    expect(burn.memoryPeakBytes).toBeGreaterThan(24 * MiB);
    const idle = await job(runner, spec('gina', 'true'));
    expect(runner.idleOf('gina')[0]?.jobs).toBe(2);
    expect(idle.cpuMs).toBeGreaterThanOrEqual(0);
    expect(idle.cpuMs).toBeLessThan(burn.cpuMs! / 2);
    expect(idle.memoryPeakBytes).toBeGreaterThan(0);
    expect(idle.memoryPeakBytes).toBeLessThan(16 * MiB);
  });

  it('an interactive job reads the container stdin and is its container\'s last', async () => {
    const running = await runner.run(spec('hank', 'read a; read b; echo "$a-$b"', { keepStdinOpen: true, stdin: Buffer.from('one\n') }), () => {});
    running.write('two\n');
    running.endInput();
    const r = await running.done;
    expect(r.stdout.toString()).toBe('one-two\n');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(runner.idleOf('hank')).toEqual([]);
  });
});

describe('docker jobs config (no engine needed)', () => {
  it('has defaults for the pool and refuses bad values', () => {
    const d = Value.Default(DockerConfigSchema, {}) as DockerConfig;
    expect(d).toMatchObject({ warmContainers: 2, maxIdleContainers: 16, jobsPerContainer: 100, containerIdleSeconds: 60 });
    for (const bad of [{ jobsPerContainer: 0 }, { containerIdleSeconds: 0 }, { maxIdleContainers: -1 }]) {
      expect(Value.Check(DockerConfigSchema, { ...d, ...bad }), JSON.stringify(bad)).toBe(false);
    }
  });
});
