/**
 * A Docker engine for tests and benchmarks: the one at DOCKER_HOST (or the usual socket) when
 * it answers; otherwise, when this machine has dockerd and we are root, a private dockerd on
 * its own socket and data root under /tmp, stopped (and its files removed) at the end.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectEngine, engineAddress, engineVersion } from '../../src/drivers/docker/engine.js';

export interface TestEngine {
  /** `unix://…` address for DOCKER_HOST. */
  host: string;
  version: string;
  /** True when this helper started dockerd itself. */
  started: boolean;
  stop(): Promise<void>;
}

const DOCKERD = ['/usr/sbin/dockerd', '/usr/bin/dockerd'].find((p) => existsSync(p));

/** An engine that answers, or the reason there is none. */
export async function obtainEngine(): Promise<TestEngine | { unavailable: string }> {
  const existing = engineAddress();
  try {
    const version = await engineVersion(connectEngine(existing), 2000);
    return { host: existing, version, started: false, stop: async () => {} };
  } catch (e) {
    if (!DOCKERD) return { unavailable: `no engine at ${existing} (${(e as Error).message}) and dockerd is not installed (apt-get install docker.io)` };
    if (process.getuid?.() !== 0) return { unavailable: `no engine at ${existing} and starting dockerd needs root` };
  }
  return startDockerd(DOCKERD);
}

/** The host's bridge links docker makes (br-…, docker_gwbridge). */
function dockerBridges(): Set<string> {
  const out = spawnSync('ip', ['-o', 'link', 'show', 'type', 'bridge'], { encoding: 'utf8' }).stdout ?? '';
  return new Set([...out.matchAll(/^\d+: ((?:br-|docker_gwbridge)[^:@\s]*)/gm)].map((m) => m[1]!));
}

async function startDockerd(dockerd: string): Promise<TestEngine | { unavailable: string }> {
  // A stopped dockerd leaves its swarm-scope bridges (and their routes) on the host: a later
  // run's ports network then overlaps them ("Pool overlaps…"). What it made is removed at stop.
  const before = dockerBridges();
  const root = mkdtempSync(path.join(tmpdir(), 'corral-dockerd-'));
  const host = `unix://${root}/docker.sock`;
  const logFile = path.join(root, 'dockerd.log');
  const child: ChildProcess = spawn(
    dockerd,
    [
      '--host', host,
      '--data-root', path.join(root, 'data'),
      '--exec-root', path.join(root, 'exec'),
      '--pidfile', path.join(root, 'docker.pid'),
      // Its own bridge, so it never clashes with another engine's docker0 on this machine.
      '--bridge', 'none',
      '--log-level', 'warn',
    ],
    { stdio: ['ignore', openSync(logFile, 'a'), openSync(logFile, 'a')], detached: true },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    const ac = new AbortController();
    await Promise.race([exited, sleep(15_000, undefined, { signal: ac.signal }).catch(() => undefined)]);
    ac.abort();
    if (child.exitCode === null) child.kill('SIGKILL');
    for (const link of dockerBridges()) if (!before.has(link)) spawnSync('ip', ['link', 'delete', link]);
    rmSync(root, { recursive: true, force: true, maxRetries: 3 });
  };
  const engine = connectEngine(host);
  for (let i = 0; i < 150; i++) {
    if (child.exitCode !== null) break;
    try {
      const version = await engineVersion(engine, 1000);
      return { host, version, started: true, stop };
    } catch {
      await sleep(100);
    }
  }
  const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-5).join(' | ') : '';
  await stop();
  return { unavailable: `dockerd did not start: ${log}` };
}
