/**
 * Helpers for driver tests: a fake corral data dir (standing for the real one, with a secret
 * in it), spec building, and a sink that collects output and the exit report.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Driver, ExitStatus, Workload, WorkloadSpec } from '../../src/drivers/driver.js';
import type { SandboxSpec } from '../../src/drivers/process/sandbox.js';

export interface DriverTestDirs {
  /** Temp root, removed after the suite. */
  root: string;
  /** Stands for corral's data dir: the driver must hide it from workloads. */
  corralData: string;
  /** A file in corralData no workload may read. */
  secretFile: string;
}

export async function makeDirs(): Promise<DriverTestDirs> {
  const root = await mkdtemp(path.join(tmpdir(), 'corral-driver-'));
  const corralData = path.join(root, 'corral-data');
  await mkdir(path.join(corralData, 'instances'), { recursive: true });
  const secretFile = path.join(corralData, 'signing.key');
  await writeFile(secretFile, 'TOP-SECRET-KEY\n', { mode: 0o600 });
  return { root, corralData, secretFile };
}

export const removeDirs = (d: DriverTestDirs) => rm(d.root, { recursive: true, force: true });

/** An instance's private data dir inside the fake corral data dir (like the real layout). */
export const dataDirOf = (d: DriverTestDirs, instanceId: string) => path.join(d.corralData, 'instances', instanceId, 'data');

export interface SpecDefaults {
  dataMount: string;
  image?: string;
}

export function makeSpec(
  d: DriverTestDirs,
  defaults: SpecDefaults,
  instanceId: string,
  shell: string,
  extra: Partial<WorkloadSpec> = {},
): WorkloadSpec {
  return {
    instanceId,
    owner: 'tester',
    generation: 1,
    command: ['sh', '-c', shell],
    env: { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: defaults.dataMount },
    cwd: defaults.dataMount,
    dataDir: dataDirOf(d, instanceId),
    dataMount: defaults.dataMount,
    mounts: [],
    ports: [],
    limits: {},
    image: defaults.image,
    network: false,
    ...extra,
  };
}

/** A running workload plus everything its sink received. */
export interface Run {
  workload: Workload;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the one exit report. */
  exit: Promise<ExitStatus>;
  exitCalls: () => number;
  /** Waits until stdout matches, failing after `ms`. */
  waitFor: (pattern: RegExp, ms?: number) => Promise<void>;
}

export async function run(driver: Driver, spec: WorkloadSpec): Promise<Run> {
  const out = { stdout: '', stderr: '' };
  let exits = 0;
  let resolveExit!: (s: ExitStatus) => void;
  const exit = new Promise<ExitStatus>((r) => (resolveExit = r));
  const workload = await driver.start(spec, {
    output: (stream, chunk) => (out[stream] += chunk.toString()),
    exit: (status) => {
      exits++;
      resolveExit(status);
    },
  });
  const waitFor = async (pattern: RegExp, ms = 10_000) => {
    const deadline = Date.now() + ms;
    while (!pattern.test(out.stdout)) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}; stdout=${JSON.stringify(out.stdout)} stderr=${JSON.stringify(out.stderr)}`);
      await sleep(20);
    }
  };
  return { workload, stdout: () => out.stdout, stderr: () => out.stderr, exit, exitCalls: () => exits, waitFor };
}

/** Resolves with the workload's exit, or rejects after `ms` (so a hang fails the test clearly). */
export function exitWithin(r: Run, ms = 15_000): Promise<ExitStatus> {
  return Promise.race([
    r.exit,
    sleep(ms).then(() => {
      throw new Error(`no exit within ${ms} ms; stdout=${JSON.stringify(r.stdout())} stderr=${JSON.stringify(r.stderr())}`);
    }),
  ]);
}

/** True when the status says "killed by SIGKILL" (signal, or 137 for drivers that report codes). */
export const killedBySigkill = (s: ExitStatus) => s.signal === 'SIGKILL' || s.code === 137;

/** A sandbox spec that runs `true` with nothing bound or writable; `extra` overrides. */
export const sandboxSpec = (bwrap: string, extra: Partial<SandboxSpec> = {}): SandboxSpec => ({
  bwrap,
  command: ['sh', '-c', 'true'],
  env: { PATH: '/usr/bin:/bin' },
  cwd: '/',
  writable: [],
  readOnly: [],
  network: false,
  ...extra,
});
