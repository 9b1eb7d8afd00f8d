/**
 * `corral doctor`: what this machine offers corral, each with what corral does without it.
 * Every probe really tries the thing (writes to the data directory, creates a sandbox, a
 * cgroup, pings the Docker engine) rather than only looking for a file.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { request } from 'node:http';
import path from 'node:path';
import type { ProcessConfig } from '../drivers/process/config.js';
import { detectCgroups, detectSandbox, UNSANDBOXED_WARNING } from '../drivers/process/detect.js';
import { detectPasta, PASTA_FIX } from '../drivers/process/network.js';
import { noNewPrivilegesNote } from '../drivers/swarm/privileges.js';
import { childEnv } from './child-env.js';

export type CheckStatus = 'ok' | 'limited' | 'missing';

export interface DoctorCheck {
  name: string;
  status: CheckStatus;
  /** What was found: a version, a path, why it does not work. */
  detail: string;
  /** What corral does without it (absent when status is ok). */
  without?: string;
}

export interface DoctorReport {
  checks: DoctorCheck[];
  /** False when corral cannot serve at all here (Node too old, data dir unusable). */
  ready: boolean;
}

const MIN_NODE = [20, 19] as const;

/**
 * `process`: the drivers.process settings (sandbox none is flagged; bwrap is its path);
 * `diskCheckSeconds`: how often instances' disk use is measured (instances.diskCheckSeconds).
 */
export async function runDoctor(opts: {
  data: string;
  process?: Partial<ProcessConfig>;
  diskCheckSeconds?: number;
  /** drivers.swarm when the swarm driver is enabled: then its engine is checked too. */
  swarm?: { allowNewPrivileges: boolean };
}): Promise<DoctorReport> {
  const checks = await Promise.all([
    checkNode(),
    checkDataDir(opts.data),
    checkSandbox(opts.process),
    checkNetwork(opts.process),
    checkCgroups(),
    checkDocker(),
    checkChromium(),
    checkDiskLimit(opts.diskCheckSeconds ?? 30),
    ...(opts.swarm ? [checkSwarm(opts.swarm.allowNewPrivileges)] : []),
  ]);
  const ready = checks.slice(0, 2).every((c) => c.status === 'ok');
  return { checks, ready };
}

async function checkNode(): Promise<DoctorCheck> {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  const ok = major > MIN_NODE[0] || (major === MIN_NODE[0] && minor >= MIN_NODE[1]);
  return ok
    ? { name: 'node', status: 'ok', detail: `Node.js ${process.versions.node}` }
    : {
        name: 'node',
        status: 'missing',
        detail: `Node.js ${process.versions.node} is older than ${MIN_NODE.join('.')}`,
        without: 'corral does not support this Node.js: install 20.19 or a current LTS',
      };
}

/** Writes and removes a probe directory: `access()` says yes to root even on a read-only mount. */
async function checkDataDir(dir: string): Promise<DoctorCheck> {
  const name = 'data dir';
  const without = 'corral serve refuses to start; pass --data DIR with a writable directory';
  // The directory itself, or the nearest ancestor that exists (corral serve creates the rest).
  let existing = dir;
  let found = await stat(existing).catch(() => undefined);
  while (!found) {
    existing = path.dirname(existing);
    found = await stat(existing).catch(() => undefined);
  }
  if (!found.isDirectory()) return { name, status: 'missing', detail: `${existing} is not a directory`, without };
  try {
    const probe = await mkdtemp(path.join(existing, '.corral-doctor-'));
    await rm(probe, { recursive: true });
  } catch (e) {
    return { name, status: 'missing', detail: `${existing} is not writable: ${(e as Error).message}`, without };
  }
  return { name, status: 'ok', detail: existing === dir ? `${dir} (writable)` : `${dir} (will be created in ${existing})` };
}

async function checkSandbox(c: Partial<ProcessConfig> = {}): Promise<DoctorCheck> {
  const name = 'bubblewrap';
  // The admin's explicit opt-out is reported whatever bwrap can do here: it is what runs.
  if (c.sandbox === 'none') return { name, status: 'missing', detail: `UNSAFE: ${UNSANDBOXED_WARNING}`, without: 'workloads are not isolated at all' };
  const s = await detectSandbox(c.bwrap);
  if (s.available) return { name, status: 'ok', detail: `${s.path} ${s.version ?? ''} (creates sandboxes)`.trim() };
  return {
    name,
    status: 'missing',
    detail: s.reason ?? 'not available',
    without: 'the process driver refuses instances and jobs (503 driver_unavailable); install bubblewrap (apt-get install bubblewrap)',
  };
}

/** Each workload's own network namespace needs bwrap, and pasta for its ports (network.ts). */
async function checkNetwork(c: Partial<ProcessConfig> = {}): Promise<DoctorCheck> {
  const name = 'network isolation';
  const shared = 'workloads share the host network: they reach every loopback service, corral and each other';
  if (c.sandbox === 'none') return { name, status: 'missing', detail: 'no sandbox (drivers.process.sandbox: none)', without: shared };
  if (c.hostNetwork) return { name, status: 'missing', detail: 'UNSAFE: drivers.process.hostNetwork is true', without: shared };
  const s = await detectSandbox(c.bwrap);
  if (!s.available || !s.path) return { name, status: 'missing', detail: 'needs bubblewrap', without: 'the process driver refuses workloads' };
  const p = await detectPasta(s.path, c.pasta);
  if (p.available) return { name, status: 'ok', detail: `own namespace per workload; ports forwarded by ${p.path}; outbound: ${c.outbound ?? 'none'}` };
  return {
    name,
    status: 'missing',
    detail: p.reason ?? 'pasta not available',
    without: `instances with ports${c.outbound === 'pasta' ? ' and workloads wanting outbound' : ''} are refused (503); ${PASTA_FIX}, or set drivers.process.hostNetwork: true (UNSAFE)`,
  };
}

async function checkCgroups(): Promise<DoctorCheck> {
  const c = await detectCgroups();
  const without = 'memory, CPU and pids limits are not enforced and CPU/memory use is not measured';
  if (c.version === 'none') return { name: 'cgroups', status: 'missing', detail: c.reason ?? 'no cgroup filesystem', without };
  const detail = `${c.version} at ${c.root ?? '?'}: ${c.controllers.join(', ') || 'no controllers'}; ${c.writable ? 'writable' : 'not writable'}`;
  if (c.writable && !c.reason) return { name: 'cgroups', status: 'ok', detail };
  return { name: 'cgroups', status: c.writable ? 'limited' : 'missing', detail: c.reason ? `${detail} (${c.reason})` : detail, without };
}

function dockerSocket(): string {
  const host = process.env.DOCKER_HOST;
  return host?.startsWith('unix://') ? host.slice('unix://'.length) : '/var/run/docker.sock';
}

async function checkDocker(): Promise<DoctorCheck> {
  const socket = dockerSocket();
  const without = 'the docker driver is unavailable; the process driver runs everything';
  try {
    if (!statSync(socket).isSocket()) return { name: 'docker', status: 'missing', detail: `${socket} is not a socket`, without };
  } catch {
    return { name: 'docker', status: 'missing', detail: `no Docker socket at ${socket}`, without };
  }
  const answer = await askEngine(socket, '/version');
  const version = answer instanceof Error ? answer : String((answer as { Version?: string }).Version ?? '?');
  if (version instanceof Error) return { name: 'docker', status: 'missing', detail: `${socket}: engine does not answer: ${version.message}`, without };
  return { name: 'docker', status: 'ok', detail: `Docker Engine ${version} at ${socket}` };
}

/** GET `path` from the engine on `socket`: the parsed JSON, or why there is none. */
function askEngine(socket: string, path: string): Promise<unknown> {
  return new Promise<unknown>((resolve) => {
    const req = request({ socketPath: socket, path, timeout: 3000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body));
        } catch {
          resolve(new Error(`unexpected answer (${res.statusCode ?? '?'})`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 3 s')));
    req.on('error', resolve);
    req.end();
  });
}

/** The swarm driver: whether the engine is a swarm manager, and whether its tasks get no-new-privileges. */
async function checkSwarm(allowNewPrivileges: boolean): Promise<DoctorCheck> {
  const name = 'swarm';
  const socket = dockerSocket();
  const [info, version] = await Promise.all([askEngine(socket, '/info'), askEngine(socket, '/version')]);
  const swarm = info instanceof Error ? undefined : (info as { Swarm?: { LocalNodeState?: string; ControlAvailable?: boolean } }).Swarm;
  if (!swarm || swarm.LocalNodeState !== 'active' || !swarm.ControlAvailable || version instanceof Error) {
    return { name, status: 'missing', detail: `the engine at ${socket} is not a swarm manager`, without: 'the swarm driver is unavailable' };
  }
  const note = noNewPrivilegesNote(String((version as { ApiVersion?: string }).ApiVersion ?? '0'), allowNewPrivileges);
  if (note.ok) return { name, status: 'ok', detail: note.text };
  return {
    name,
    status: allowNewPrivileges ? 'limited' : 'missing',
    detail: note.text,
    without: allowNewPrivileges ? 'a setuid binary in an image can raise a swarm task\'s privileges' : 'swarm instances are refused (503 driver_unavailable)',
  };
}

/** Which kind of disk limit instances get: always corral's measuring (docs/isolation.md), never a kernel quota. */
async function checkDiskLimit(everySeconds: number): Promise<DoctorCheck> {
  const name = 'disk limit';
  if (!everySeconds) {
    return { name, status: 'missing', detail: 'instances.diskCheckSeconds is 0: diskBytes is not checked', without: 'an instance can fill the disk' };
  }
  return {
    name,
    status: 'limited',
    detail:
      `soft: each instance's data dir is measured every ${everySeconds} s (instances.diskCheckSeconds) and the instance ` +
      'is stopped once over its diskBytes; no kernel quota is used',
    without: 'between two checks an instance can write at disk speed past its cap (GBs per second); lower instances.diskCheckSeconds to shorten that',
  };
}

const CHROMIUM_NAMES = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable', 'chrome'];

function executableOnPath(names: string[]): string | undefined {
  const dirs = (process.env.PATH ?? '').split(':').filter(Boolean);
  for (const name of names) {
    for (const dir of dirs) {
      try {
        accessSync(path.join(dir, name), constants.X_OK);
        return path.join(dir, name);
      } catch {
        /* keep looking */
      }
    }
  }
  return undefined;
}

async function checkChromium(): Promise<DoctorCheck> {
  const without = 'browser instances (one headless Chrome per document) are unavailable; install chromium';
  const bin = executableOnPath(CHROMIUM_NAMES);
  if (!bin) return { name: 'chromium', status: 'missing', detail: `none of ${CHROMIUM_NAMES.join(', ')} on PATH`, without };
  const version = await new Promise<string | undefined>((resolve) =>
    execFile(bin, ['--version'], { timeout: 10_000, env: childEnv() }, (err, stdout) => resolve(err ? undefined : stdout.trim())),
  );
  if (!version) return { name: 'chromium', status: 'missing', detail: `${bin} does not run (--version failed)`, without };
  return { name: 'chromium', status: 'ok', detail: `${version} (${bin})` };
}
