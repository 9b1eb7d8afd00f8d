/**
 * Talking to one container: attach (stdin in, multiplexed output out), wait for its exit,
 * signal it, remove it. Shared by instance workloads and jobs.
 */
import { constants } from 'node:os';
import type { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type Docker from 'dockerode';
import { errors } from '../../core/errors.js';
import type { ExitStatus, OutputStream, WorkloadStats } from '../driver.js';
import { statusOf } from './engine.js';
import { FrameDecoder } from './frames.js';

/** How long output may still arrive after the engine reported the exit. */
const DRAIN_MS = 500;
/** After SIGKILL, how long until we stop waiting for the exit report. */
const KILL_SETTLE_MS = 5000;

export interface Attached {
  /** The hijacked connection: writes go to the container's stdin. */
  stream: Duplex;
  /** Resolves when the output stream ended (or failed). */
  ended: Promise<void>;
}

/** Attaches to stdin, stdout and stderr; call before start() so no output is missed. */
export async function attach(container: Docker.Container, tty: boolean, onOutput: (stream: OutputStream, chunk: Buffer) => void): Promise<Attached> {
  const stream = (await container.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true })) as unknown as Duplex;
  const decoder = new FrameDecoder(tty, onOutput);
  stream.on('data', (chunk: Buffer) => decoder.push(chunk));
  const ended = new Promise<void>((resolve) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
    stream.once('error', () => resolve());
  });
  return { stream, ended };
}

/** Closes the container's stdin (half-closes the hijacked connection). */
export function endInput(a: Attached): void {
  if (!a.stream.writableEnded) a.stream.end();
}

/** Waits for the exit, lets the output drain, and reports it (with the OOM flag when it may apply). */
export async function waitForExit(container: Docker.Container, a: Attached | undefined, abort?: AbortSignal): Promise<ExitStatus> {
  let code: number | null = null;
  try {
    code = ((await container.wait({ abortSignal: abort })) as { StatusCode: number }).StatusCode;
  } catch (e) {
    // Removed by someone else: it no longer runs, whatever its code was.
    if (statusOf(e) !== 404) throw e;
  }
  // The engine's OOM flag also covers a child the limit killed while the main process lived on.
  const [oomKilled] = await Promise.all([
    container.inspect().then((i) => !!i.State.OOMKilled, () => false),
    a && Promise.race([a.ended, sleep(DRAIN_MS)]),
  ]);
  return exitStatus(code, oomKilled);
}

/**
 * docker-init reports a workload killed by signal n as exit code 128+n, like a shell: map it
 * back, as the process driver does. A program that itself exits 128+n looks the same.
 */
export function exitStatus(code: number | null, oomKilled: boolean): ExitStatus {
  if (code !== null && code > 128 && code < 128 + 65) {
    const name = Object.entries(constants.signals).find(([, n]) => n === code - 128)?.[0];
    if (name) return { code: null, signal: name, oomKilled };
  }
  return { code, signal: null, oomKilled };
}

/** Checks a signal name; an unknown one is a bad_request. */
export function checkSignal(signal: string): string {
  if (!(signal in constants.signals)) throw errors.badRequest(`unknown signal "${signal}"`);
  return signal;
}

/** Sends a signal; a container that already stopped or is gone is not an error. */
export async function killContainer(container: Docker.Container, signal: string): Promise<void> {
  try {
    await container.kill({ signal });
  } catch (e) {
    if (statusOf(e) !== 404 && statusOf(e) !== 409) throw e;
  }
}

/** Sends `signal`; when `exited` has not settled within `graceMs`, SIGKILL (and a little more waiting). */
export async function stopContainer(container: Docker.Container, signal: string, graceMs: number, exited: Promise<unknown>): Promise<void> {
  await killContainer(container, checkSignal(signal));
  const inTime = await Promise.race([exited.then(() => true), sleep(graceMs).then(() => false)]);
  if (!inTime) {
    await killContainer(container, 'SIGKILL');
    await Promise.race([exited, sleep(KILL_SETTLE_MS)]);
  }
}

/** One sample of the engine's stats of a running container. */
export async function containerStats(container: Docker.Container): Promise<WorkloadStats> {
  const s = (await container.stats({ stream: false, 'one-shot': true } as { stream: false })) as unknown as {
    memory_stats?: { usage?: number };
    cpu_stats?: { cpu_usage?: { total_usage?: number } };
    pids_stats?: { current?: number };
  };
  return {
    memoryBytes: s.memory_stats?.usage,
    cpuSeconds: s.cpu_stats?.cpu_usage?.total_usage === undefined ? undefined : s.cpu_stats.cpu_usage.total_usage / 1e9,
    pids: s.pids_stats?.current,
  };
}

export async function removeContainer(container: Docker.Container): Promise<void> {
  try {
    await container.remove({ force: true });
  } catch (e) {
    // Gone already, or removal already in progress.
    if (statusOf(e) !== 404 && statusOf(e) !== 409) throw e;
  }
}
