/**
 * Jobs on docker: one single-use container per job, from the image of the job's runtime, with
 * no network unless the job has it. The job's files are written to a host dir bind-mounted at
 * /work (its output file is read back from there once the container is dead); its command
 * comes through a read-only control dir. Containers of the default profile are pre-started
 * (a warm pool per image): they wait in `read` for a "go" line on stdin, so a job on a warm
 * container costs a few writes instead of a create and a start.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { chownSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type Docker from 'dockerode';
import { errors } from '../../core/errors.js';
import { writeFiles } from '../../core/jobs/files.js';
import type { JobLimits, JobResult, JobRunner, JobSpec, JobStatus, RunningJob } from '../../core/jobs/runner.js';
import { SANDBOX_PATH } from '../../core/jobs/runtimes.js';
import type { OutputStream } from '../driver.js';
import { jobOutput, jobResult } from '../job-output.js';
import type { DockerConfig } from './config.js';
import { attach, endInput, removeContainer, waitForExit, type Attached } from './container-io.js';
import { containerSettings, hostConfig, hostOwner, labels, type ContainerSettings } from './container-spec.js';
import { ensureImage, type Engine } from './engine.js';
import { ExitMarker } from './exit-marker.js';
import { ownedBy } from './labels.js';
import { networkEnsurer } from './network.js';

const WORK_MOUNT = '/work';
const CONTROL_MOUNT = '/.corral';
/** Waits for the go line (the rest of stdin is the job's), then runs the job's command. */
const WAITER = `IFS= read -r _ || exit 0; . ${CONTROL_MOUNT}/cmd`;

/** What must be equal for a pre-started container to fit a job. */
interface Profile {
  image: string;
  network: boolean;
  limits: Pick<JobLimits, 'memoryBytes' | 'pids' | 'cpus' | 'fileSizeBytes' | 'openFiles'>;
}

export interface DockerJobRunnerOptions {
  engine: Engine;
  serverId: string;
  config: DockerConfig;
  /** Host dir under which each job gets its own dir (inside corral's data dir). */
  root: string;
  /** Images kept warm, with the default limits. */
  warmImages: string[];
  defaults: Profile['limits'];
  onError?: (err: unknown) => void;
}

const sameProfile = (a: Profile, b: Profile) => JSON.stringify(a) === JSON.stringify(b);

/** The job's command in a subshell, then its exit code as a marker on both streams (exit-marker.ts). */
const jobScript = (command: string, nonce: string) =>
  `(\n${command}\n)\ncorral_status=$?\n${ExitMarker.printf(nonce, 'corral_status', 1)}\n${ExitMarker.printf(nonce, 'corral_status', 2)}\nexit "$corral_status"\n`;

/** One single-use container: created (and started), then given one job, then removed. */
class Box {
  readonly dir: string;
  readonly workDir: string;
  readonly controlDir: string;
  container!: Docker.Container;
  io!: Attached;
  /** The exit, as soon as the container was started. */
  exit!: Promise<Awaited<ReturnType<typeof waitForExit>>>;
  exited = false;
  /** Output goes here once a job owns the box. */
  onOutput: (stream: OutputStream, chunk: Buffer) => void = () => {};

  private constructor(root: string) {
    this.dir = path.join(root, randomUUID());
    this.workDir = path.join(this.dir, 'work');
    this.controlDir = path.join(this.dir, 'control');
  }

  static async start(opts: DockerJobRunnerOptions, settings: ContainerSettings, profile: Profile, owner: string): Promise<Box> {
    const box = new Box(opts.root);
    mkdirSync(box.workDir, { recursive: true, mode: 0o755 });
    mkdirSync(box.controlDir, { mode: 0o755 });
    const hostUser = hostOwner(settings.user);
    if (hostUser) chownSync(box.workDir, hostUser.uid, hostUser.gid);
    const { limits } = profile;
    try {
      box.container = await opts.engine.createContainer({
        Image: profile.image,
        Entrypoint: [],
        Cmd: ['/bin/sh', '-c', WAITER],
        Env: [`PATH=${SANDBOX_PATH}`, `HOME=${WORK_MOUNT}`, 'TMPDIR=/tmp', 'LANG=C.UTF-8'],
        WorkingDir: WORK_MOUNT,
        ...(settings.user && { User: settings.user }),
        Hostname: 'job',
        Labels: labels(settings, 'job', owner),
        AttachStdin: true,
        AttachStdout: true,
        AttachStderr: true,
        OpenStdin: true,
        // Ending our side of the attach closes the job's stdin.
        StdinOnce: true,
        Tty: false,
        HostConfig: {
          ...hostConfig(settings, limits, profile.network),
          Mounts: [
            { Type: 'bind', Source: box.workDir, Target: WORK_MOUNT, ReadOnly: false },
            { Type: 'bind', Source: box.controlDir, Target: CONTROL_MOUNT, ReadOnly: true },
          ],
          Ulimits: [
            { Name: 'fsize', Soft: limits.fileSizeBytes, Hard: limits.fileSizeBytes },
            { Name: 'nofile', Soft: limits.openFiles, Hard: limits.openFiles },
            { Name: 'core', Soft: 0, Hard: 0 },
          ],
        },
      });
      box.io = await attach(box.container, false, (stream, chunk) => box.onOutput(stream, chunk));
      await box.container.start();
    } catch (e) {
      await box.destroy();
      throw e;
    }
    box.exit = waitForExit(box.container, box.io).finally(() => (box.exited = true));
    return box;
  }

  kill(): void {
    if (!this.exited) void this.container.kill({ signal: 'SIGKILL' }).catch(() => undefined);
  }

  async destroy(): Promise<void> {
    this.io?.stream.destroy();
    if (this.container) await removeContainer(this.container).catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true });
  }
}

export class DockerJobRunner implements JobRunner {
  readonly name = 'docker';
  private readonly warm = new Map<string, Promise<Box | undefined>[]>();
  private readonly running = new Set<Box>();
  private readonly cleanups = new Set<Promise<void>>();
  private readonly settings: ContainerSettings;
  private readonly ensureNetwork: () => Promise<void>;
  private closed = false;

  private constructor(private readonly opts: DockerJobRunnerOptions) {
    this.settings = containerSettings(opts.serverId, opts.config);
    this.ensureNetwork = networkEnsurer(opts.engine, opts.config.network);
  }

  /** A runner; job containers a dead server left behind are removed first. */
  static async create(opts: DockerJobRunnerOptions): Promise<DockerJobRunner> {
    const left = await opts.engine.listContainers({ all: true, filters: ownedBy(opts.serverId, 'job') });
    await Promise.all(left.map((c) => removeContainer(opts.engine.getContainer(c.Id)).catch(() => undefined)));
    await rm(opts.root, { recursive: true, force: true });
    await mkdir(opts.root, { recursive: true, mode: 0o700 });
    const runner = new DockerJobRunner(opts);
    runner.refill();
    return runner;
  }

  async run(spec: JobSpec, onOutput: (stream: OutputStream, chunk: Buffer) => void): Promise<RunningJob> {
    if (this.closed) throw errors.driverUnavailable('the job runner is closed');
    const box = await this.boxFor(spec);
    this.running.add(box);
    const nonce = randomBytes(12).toString('hex');
    try {
      await writeFiles(box.workDir, spec.files);
      writeFileSync(path.join(box.controlDir, 'cmd'), jobScript(spec.command, nonce));
    } catch (e) {
      this.running.delete(box);
      await box.destroy();
      throw e;
    }
    return this.start(box, spec, nonce, onOutput);
  }

  /** The first line `command` prints in a container of `image`, or undefined when it fails. */
  async version(image: string, command: string): Promise<string | undefined> {
    const spec: JobSpec = {
      id: 'version',
      owner: '',
      command,
      files: [],
      keepStdinOpen: false,
      timeoutMs: 20_000,
      limits: { ...this.opts.defaults, outputBytes: 4096 },
      network: false,
      readOnlyPaths: [],
      image,
      maxOutputFileBytes: 0,
    };
    try {
      const r = await (await this.run(spec, () => {})).done;
      if (r.status !== 'ok') return undefined;
      return (r.stdout.toString().trim() || r.stderr.toString().trim()).split('\n')[0]!.trim().slice(0, 200);
    } catch {
      return undefined;
    }
  }

  /** Resolves once every warm container asked for so far has started (benchmarks, tests). */
  async warmed(): Promise<void> {
    await Promise.all([...this.warm.values()].flat());
  }

  async close(): Promise<void> {
    this.closed = true;
    const idle = await Promise.all([...this.warm.values()].flatMap((pool) => pool.splice(0)));
    await Promise.all([...idle, ...this.running].map((b) => b?.destroy()));
    await Promise.all(this.cleanups);
  }

  private track(cleanup: Promise<void>): void {
    const p = cleanup.catch((e: unknown) => this.opts.onError?.(e)).finally(() => this.cleanups.delete(p));
    this.cleanups.add(p);
  }

  private profileOf(spec: JobSpec): Profile {
    if (!spec.image) throw errors.badRequest('this runtime has no image for the docker driver (jobs.runtimes[].image)');
    const l = spec.limits;
    return {
      image: spec.image,
      network: spec.network,
      limits: { memoryBytes: l.memoryBytes, pids: l.pids, cpus: l.cpus, fileSizeBytes: l.fileSizeBytes, openFiles: l.openFiles },
    };
  }

  private defaultProfile(image: string): Profile {
    return { image, network: false, limits: this.opts.defaults };
  }

  /** A warm container when one fits and still runs, else a new one. */
  private async boxFor(spec: JobSpec): Promise<Box> {
    const profile = this.profileOf(spec);
    const pool = this.warm.get(profile.image);
    if (pool && sameProfile(profile, this.defaultProfile(profile.image))) {
      // Each take refills: bounded, so a pool whose starts keep failing cannot spin forever.
      for (let tries = pool.length; tries > 0 && pool.length; tries--) {
        const box = await pool.shift()!;
        this.refill();
        if (box && !box.exited) return box;
        if (box) this.track(box.destroy());
      }
    }
    await ensureImage(this.opts.engine, profile.image, { pull: this.opts.config.pull });
    if (profile.network) await this.ensureNetwork();
    return Box.start(this.opts, this.settings, profile, spec.owner);
  }

  /** Tops each image's pool of warm containers up, off the job's critical path. */
  private refill(): void {
    if (this.closed) return;
    for (const image of this.opts.warmImages) {
      let pool = this.warm.get(image);
      if (!pool) this.warm.set(image, (pool = []));
      while (pool.length < this.opts.config.warmContainers) {
        pool.push(
          new Promise<void>((r) => setImmediate(r))
            .then(() => (this.closed ? undefined : Box.start(this.opts, this.settings, this.defaultProfile(image), '')))
            .catch((e: unknown) => {
              this.opts.onError?.(e);
              return undefined;
            }),
        );
      }
    }
  }

  private start(box: Box, spec: JobSpec, nonce: string, onOutput: (stream: OutputStream, chunk: Buffer) => void): RunningJob {
    const out = jobOutput(spec);
    let reason: JobStatus | undefined;
    const stop = (why: JobStatus) => {
      reason ??= why;
      box.kill();
    };
    const keep = (stream: OutputStream, chunk: Buffer) => {
      const part = chunk.length ? out[stream].take(chunk) : undefined;
      if (part) onOutput(stream, part);
      if (out[stream].truncated) stop('output-limit');
    };
    const markers = { stdout: new ExitMarker(nonce), stderr: new ExitMarker(nonce) };
    let markersSeen!: (code: number) => void;
    const marked = new Promise<number>((resolve) => (markersSeen = resolve));
    box.onOutput = (stream, chunk) => {
      keep(stream, markers[stream].push(chunk));
      const { stdout, stderr } = markers;
      if (stdout.code !== undefined && stderr.code !== undefined) markersSeen(stdout.code);
    };
    const stdin = box.io.stream;
    let stdinOpen = true;
    const endJobInput = () => {
      if (stdinOpen) endInput(box.io);
      stdinOpen = false;
    };

    const started = performance.now();
    stdin.write(spec.stdin ? Buffer.concat([Buffer.from('go\n'), spec.stdin]) : 'go\n');
    if (!spec.keepStdinOpen) endJobInput();
    const timer = setTimeout(() => stop('timeout'), spec.timeoutMs);

    const done = (async (): Promise<JobResult> => {
      const exit = box.exit.catch(() => ({ code: null, signal: null, oomKilled: false }));
      const first = await Promise.race([exit, marked]);
      // The marker's code is final unless a signal ended the command (the memory limit's
      // kill among them): then the engine's exit report says whether it was out of memory.
      // An output file is read only once every process of the job is dead (nothing can swap
      // it for a link meanwhile), so such jobs wait for the container's end too.
      const fast = typeof first === 'number' && first < 128 && !reason && !spec.outputPath;
      const { code, signal, oomKilled } = fast ? { code: first, signal: null, oomKilled: false } : await exit;
      if (!fast) for (const stream of ['stdout', 'stderr'] as const) keep(stream, markers[stream].flush());
      const wallMs = performance.now() - started;
      clearTimeout(timer);
      this.running.delete(box);
      const result = await jobResult(spec, box.workDir, out, { reason, oomKilled, code, signal, wallMs, cpuMs: null, memoryPeakBytes: null });
      this.track(box.destroy());
      return result;
    })();

    return {
      write: (data) => {
        if (stdinOpen) stdin.write(data);
      },
      endInput: endJobInput,
      kill: () => stop('killed'),
      output: (stream) => out[stream].buffer,
      done,
    };
  }
}
