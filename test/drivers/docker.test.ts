/**
 * The docker driver on a real engine (see test/helpers/docker-setup.ts): the conformance
 * suite, plus what only container drivers promise — re-adoption by label, orphan removal,
 * stream framing, and images that are missing.
 */
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { loadConfig } from '../../src/core/config.js';
import { openDrivers } from '../../src/core/drivers/index.js';
import { Runtimes } from '../../src/core/jobs/runtimes.js';
import { ImagePolicy } from '../../src/drivers/docker/images.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkloadSpec } from '../../src/drivers/driver.js';
import { Value } from '@sinclair/typebox/value';
import { DockerConfigSchema, type DockerConfig } from '../../src/drivers/docker/config.js';
import { DockerDriver } from '../../src/drivers/docker/docker-driver.js';
import { DockerJobRunner } from '../../src/drivers/docker/job-runner.js';
import { connectEngine } from '../../src/drivers/docker/engine.js';
import { ensureNetwork } from '../../src/drivers/docker/network.js';
import { ExitMarker } from '../../src/drivers/docker/exit-marker.js';
import { FrameDecoder } from '../../src/drivers/docker/frames.js';
import { LABEL } from '../../src/drivers/docker/labels.js';
import { BUSYBOX_IMAGE } from '../helpers/docker-images.js';
import { describeDocker } from '../helpers/docker.js';
import { describeDriverConformance } from './conformance.js';
import { exitWithin, makeDirs, makeSpec, removeDirs, run, type DriverTestDirs } from './harness.js';

const dockerConfig = (extra: Partial<DockerConfig> = {}): DockerConfig => ({ ...(Value.Default(DockerConfigSchema, {}) as DockerConfig), ...extra });

/** A fresh server id per driver, so parallel files and leftovers never mix. */
const serverId = () => `t${randomBytes(5).toString('hex')}`;

async function removeOwned(id: string): Promise<void> {
  const engine = connectEngine();
  const found = await engine.listContainers({ all: true, filters: JSON.stringify({ label: [`${LABEL.server}=${id}`] }) });
  await Promise.all(found.map((c) => engine.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
}

describeDocker('docker driver', () => {
  const ids: string[] = [];
  afterAll(async () => {
    for (const id of ids) await removeOwned(id);
  });
  const makeDriver = () => {
    const id = serverId();
    ids.push(id);
    return new DockerDriver({ engine: connectEngine(), serverId: id, config: dockerConfig({ pull: false }) });
  };

  describeDriverConformance('docker', async () => makeDriver(), {
    image: BUSYBOX_IMAGE,
    limits: { memory: true, pids: true, cpu: true },
    isolation: { filesystem: true, network: true },
    sharesHostLoopback: false,
    tcpConnect: (port) => ['sh', '-c', `nc -w 2 127.0.0.1 ${port} </dev/null && echo connected`],
  });
});

describeDocker('docker driver specifics', () => {
  let dirs: DriverTestDirs;
  const id = serverId();
  const driver = () => new DockerDriver({ engine: connectEngine(), serverId: id, config: dockerConfig() });
  let first: DockerDriver;
  const spec = (name: string, shell: string, extra: Partial<WorkloadSpec> = {}) =>
    makeSpec(dirs, { dataMount: '/data', image: BUSYBOX_IMAGE }, name, shell, extra);
  const quiet = { output: () => {}, exit: () => {} };

  beforeAll(async () => {
    dirs = await makeDirs();
    first = driver();
  });
  afterAll(async () => {
    await first?.close();
    await removeOwned(id);
    if (dirs) await removeDirs(dirs);
  });

  it('a new driver re-adopts a running container: output, stdin and the exit come to it', async () => {
    const r = await run(first, spec('adopt', 'echo before; read line; echo "after:$line"; exit 4'));
    await r.waitFor(/before/);
    await first.close(); // the server goes away; the container keeps running
    const next = driver();
    const out: string[] = [];
    let resolveExit!: (code: number | null) => void;
    const exited = new Promise<number | null>((res) => (resolveExit = res));
    const w = await next.adopt(r.workload.handle, { output: (_s, c) => out.push(c.toString()), exit: (s) => resolveExit(s.code) });
    expect(w).toBeDefined();
    w!.write('hello\n');
    expect(await Promise.race([exited, sleep(10_000).then(() => 'timeout')])).toBe(4);
    expect(out.join('')).toBe('after:hello\n');
    // The first driver let go: it reported nothing.
    expect(r.exitCalls()).toBe(0);
    await next.close();
  });

  it('list() shows this server\'s containers only; adopt() refuses a handle the labels contradict', async () => {
    const d = driver();
    const r = await run(d, spec('listed', 'echo up; sleep 30'));
    await r.waitFor(/up/);
    const stranger = new DockerDriver({ engine: connectEngine(), serverId: serverId(), config: dockerConfig() });
    expect((await d.list()).map((h) => h.instanceId)).toContain('listed');
    expect((await stranger.list()).map((h) => h.instanceId)).not.toContain('listed');
    expect(await d.adopt({ ...r.workload.handle, generation: 9 }, quiet)).toBeUndefined();
    expect(await d.adopt({ ...r.workload.handle, instanceId: 'other' }, quiet)).toBeUndefined();
    await r.workload.stop('SIGKILL', 0);
    await exitWithin(r);
    // The exited container is removed: nothing is left to list.
    expect((await d.list()).map((h) => h.instanceId)).not.toContain('listed');
    await d.close();
  });

  it('a container that exited while no server watched is not adopted, and removed', async () => {
    const d = driver();
    const r = await run(d, spec('ended', 'echo up; sleep 0.3'));
    await r.waitFor(/up/);
    await d.close();
    await sleep(1500);
    const next = driver();
    expect(await next.adopt(r.workload.handle, quiet)).toBeUndefined();
    expect((await next.list()).map((h) => h.instanceId)).not.toContain('ended');
  });

  it('jobs: a runtime image that is missing fails the job with image_missing (the warm pool does not spin)', async () => {
    const image = '127.0.0.1:1/corral/no-runtime:1';
    const runner = await DockerJobRunner.create({
      engine: connectEngine(),
      serverId: id,
      config: dockerConfig({ warmContainers: 1 }),
      root: `${dirs.root}/jobs-docker`,
      warmImages: [image],
      defaults: { memoryBytes: 64 * 1024 * 1024, pids: 32, cpus: 1, fileSizeBytes: 1024 * 1024, openFiles: 64 },
    });
    try {
      await runner.warmed();
      const spec = {
        id: 'j', owner: 'o', command: 'true', files: [], keepStdinOpen: false, timeoutMs: 5000, network: false, readOnlyPaths: [],
        limits: { memoryBytes: 64 * 1024 * 1024, pids: 32, cpus: 1, fileSizeBytes: 1024 * 1024, openFiles: 64, outputBytes: 1024 },
        image, maxOutputFileBytes: 1024,
      };
      await expect(runner.run(spec, () => {})).rejects.toMatchObject({ code: 'image_missing', message: expect.stringContaining(image) });
    } finally {
      await runner.close();
    }
  });

  it('refuses a network of the configured name that lets containers reach each other, and reuses its own', async () => {
    const engine = connectEngine();
    const open = `corral-icc-${randomBytes(3).toString('hex')}`;
    await engine.createNetwork({ Name: open, Driver: 'bridge' }); // icc on: Docker's default
    try {
      await expect(ensureNetwork(engine, open)).rejects.toMatchObject({ code: 'config_invalid', message: expect.stringContaining('enable_icc') });
    } finally {
      await engine.getNetwork(open).remove();
    }
    const own = `corral-own-${randomBytes(3).toString('hex')}`;
    try {
      await ensureNetwork(engine, own);
      await ensureNetwork(engine, own); // the second server to start finds it and accepts it
      expect((await engine.getNetwork(own).inspect()).Options?.['com.docker.network.bridge.enable_icc']).toBe('false');
    } finally {
      await engine.getNetwork(own).remove();
    }
  });

  it('an image that is missing and cannot be pulled is an image_missing error naming it', async () => {
    // A registry on a closed local port: the pull is tried and fails without leaving the machine.
    const image = '127.0.0.1:1/corral/no-such-image:1';
    await expect(first.start(spec('missing', 'true', { image }), quiet)).rejects.toMatchObject({
      code: 'image_missing',
      message: expect.stringContaining(image),
    });
  });

});

describe('docker stream framing', () => {
  const frame = (type: number, text: string) => {
    const body = Buffer.from(text);
    const head = Buffer.alloc(8);
    head[0] = type;
    head.writeUInt32BE(body.length, 4);
    return Buffer.concat([head, body]);
  };
  const decode = (tty: boolean, chunks: Buffer[]) => {
    const got: string[] = [];
    const d = new FrameDecoder(tty, (stream, chunk) => got.push(`${stream}:${chunk.toString()}`));
    for (const c of chunks) d.push(c);
    return got;
  };

  it('multiplexed: frames split anywhere, several per chunk, both streams, stdin echo dropped', () => {
    const all = Buffer.concat([frame(1, 'out one\n'), frame(2, 'err\n'), frame(0, 'echo'), frame(1, 'out two\n')]);
    const whole = decode(false, [all]);
    expect(whole).toEqual(['stdout:out one\n', 'stderr:err\n', 'stdout:out two\n']);
    // Byte by byte (headers split too) gives the same.
    expect(decode(false, [...all].map((b) => Buffer.from([b])))).toEqual(whole);
    expect(decode(false, [all.subarray(0, 5), all.subarray(5, 19), all.subarray(19)])).toEqual(whole);
  });

  it('exit marker: cut out of the stream wherever chunks split it; a look-alike passes through', () => {
    const nonce = 'abc123';
    const text = Buffer.from(`out\x1ecorral-zzz:1\npartial\x1ecorral-${nonce}:7\n`);
    for (let cut = 0; cut <= text.length; cut++) {
      const m = new ExitMarker(nonce);
      const kept = Buffer.concat([m.push(text.subarray(0, cut)), m.push(text.subarray(cut))]).toString();
      expect(kept, `cut at ${cut}`).toBe('out\x1ecorral-zzz:1\npartial');
      expect(m.code).toBe(7);
    }
    const none = new ExitMarker(nonce);
    expect(Buffer.concat([none.push(Buffer.from('tail \x1ecorr')), none.flush()]).toString()).toBe('tail \x1ecorr');
    expect(none.code).toBeUndefined();
  });

  it('tty: the raw stream is stdout as it comes', () => {
    expect(decode(true, [Buffer.from('\u0001not a header'), Buffer.from('more')])).toEqual(['stdout:\u0001not a header', 'stdout:more']);
  });
});

describe('drivers config and admission (no engine needed)', () => {
  const silent = pino({ level: 'silent' });
  const configWith = (drivers: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
    loadConfig({ env: {}, flags: { data: path.join(tmpdir(), `corral-drivers-${process.pid}`), drivers, ...extra } });
  const noEngine = { host: 'unix:///nonexistent/docker.sock' };

  it('bad drivers.* settings are config errors naming the key', () => {
    const bad: [Record<string, unknown>, string][] = [
      [{ enabled: ['kubernetes'] }, 'drivers.enabled.0'],
      [{ docker: { host: 'http://127.0.0.1:2375' } }, 'drivers.docker.host'],
      [{ docker: { network: 'two words' } }, 'drivers.docker.network'],
      [{ docker: { images: [''] } }, 'drivers.docker.images.0'],
      [{ docker: { warmContainers: -1 } }, 'drivers.docker.warmContainers'],
      [{ swarm: { pinToLocal: true } }, 'drivers.swarm.pinToLocal'],
    ];
    for (const [drivers, key] of bad) {
      expect(() => configWith(drivers), key).toThrow(expect.objectContaining({ code: 'config_invalid', message: expect.stringContaining(`"${key}"`) }));
    }
  });

  it('drivers.default must be enabled', async () => {
    await expect(openDrivers(configWith({ default: 'docker', enabled: ['process'] }), silent)).rejects.toMatchObject({ code: 'config_invalid' });
  });

  for (const [name, reason] of [
    ['docker', 'no Docker engine at unix:///nonexistent/docker.sock'],
    ['swarm', 'no swarm at unix:///nonexistent/docker.sock'],
  ] as const) {
    it(`${name} enabled but no engine: the server opens; ${name} specs get 503, the default ${name} is a config error`, async () => {
      const drivers = await openDrivers(configWith({ enabled: ['process', name], docker: noEngine }), silent);
      try {
        await expect(drivers.workloads.admit({ driver: name, image: BUSYBOX_IMAGE })).rejects.toMatchObject({
          code: 'driver_unavailable',
          message: expect.stringContaining(reason),
        });
        await expect(drivers.workloads.admit({})).resolves.toBeUndefined();
        const other = name === 'docker' ? 'swarm' : 'docker';
        await expect(drivers.workloads.admit({ driver: other, image: BUSYBOX_IMAGE })).rejects.toMatchObject({
          code: 'validation_failed',
          message: expect.stringContaining('not enabled'),
        });
        expect(drivers.jobRunners.size).toBe(0);
      } finally {
        await drivers.workloads.close();
      }
      await expect(openDrivers(configWith({ default: name, enabled: [name], docker: noEngine }), silent)).rejects.toMatchObject({
        code: 'config_invalid',
        message: expect.stringContaining(`drivers.default is ${name}`),
      });
    });
  }

  it('a configured runtime inherits a built-in\'s command; a new one without a command is a config error; docker runtimes need a probe', async () => {
    const probed: string[] = [];
    const rt = await Runtimes.detect([{ name: 'sh', driver: 'docker', image: 'img:1', readOnlyPaths: [], network: false }], {
      probe: async (driver, image) => {
        probed.push(`${driver}:${image}`);
        return 'v1';
      },
    });
    expect(rt.get('sh')).toMatchObject({ driver: 'docker', image: 'img:1', command: 'sh main.sh', version: 'v1' });
    expect(probed).toEqual(['docker:img:1']);
    const offline = await Runtimes.detect([{ name: 'sh', driver: 'docker', image: 'img:1', readOnlyPaths: [], network: false }]);
    expect(offline.list().map((r) => r.name)).not.toContain('sh');
    await expect(Runtimes.detect([{ name: 'cobol', readOnlyPaths: [], network: false }])).rejects.toMatchObject({ code: 'config_invalid' });
  });

  it('the image allow-list: exact names and * patterns; admin-configured images are trusted', () => {
    const policy = new ImagePolicy(['corral/*', 'python:3.*', 'exact:1'], new Set(['admin/base:2']));
    for (const ok of ['corral/x:1', 'python:3.12', 'exact:1', 'admin/base:2']) expect(policy.allows(ok), ok).toBe(true);
    for (const no of ['corral', 'python:2.7', 'exact:10', 'evil/corral/x', 'admin/base:3']) expect(policy.allows(no), no).toBe(false);
    // `*` stops at `/`: a pattern cannot reach into another path or registry.
    for (const no of ['corral/x/y:1', 'python:3.1/evil:1']) expect(policy.allows(no), no).toBe(false);
    expect(new ImagePolicy(['python*'], new Set()).allows('python.evil.example/x:1')).toBe(false);
    // `**` crosses `/`: a whole registry or namespace.
    const registry = new ImagePolicy(['registry.example.org/**'], new Set());
    expect(registry.allows('registry.example.org/team/app:1')).toBe(true);
    expect(registry.allows('registry.example.org.evil/app:1')).toBe(false);
  });
});
