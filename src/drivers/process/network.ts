/**
 * Each sandboxed workload's own network namespace, and the only ways in and out of it.
 *
 * bwrap gives every instance and job `--unshare-net`: a namespace with nothing but its own
 * loopback. Another tenant's port, corral's own port and every service on the host's
 * loopback are simply not there. When a workload needs more, one `pasta` (Debian's `passt`
 * package) is attached to that namespace from outside:
 *
 *  - inbound: each of the instance's ports is bound on the HOST's 127.0.0.1 at its host port
 *    and spliced to 127.0.0.1:<declared port> inside the namespace (`-t 127.0.0.1/H:C`). Only
 *    local processes reach it — the proxy, and whoever holds a token for the proxy anyway;
 *    another instance cannot, being in its own namespace.
 *  - nothing from the namespace to the host's loopback: `-T none -U none` (pasta's default
 *    would forward every port the workload listens on... the other way round too), and
 *    `--no-map-gw` (else the gateway address leads to the host's 127.0.0.1).
 *  - outbound per `drivers.process.outbound`: `none` (default) leaves pasta's tap interface
 *    down, without address or route (the workload has no CAP_NET_ADMIN to change that), and
 *    UDP/ICMP handlers off; `pasta` adds `--config-net`: the namespace gets the host's
 *    address and default route, and its connections leave from the host like any local
 *    program's — except to the host's loopback (see above). Services the host binds to all
 *    addresses are then reachable as from the LAN, as from a docker bridge.
 *
 * pasta runs outside the workload's cgroup (its ~16–29 MB must not count against a small
 * memory limit) and dies with the server: setpriv gives it a parent-death signal, and pasta
 * joins the sandbox's own user namespace, so that signal survives (docs/isolation.md).
 *
 *   const pid = await sandboxPid(child.stdio[3])             // bwrap --info-fd 3 --block-fd 4
 *   const fwd = await attachPasta({ pasta, pid, ports: [{ hostPort: 41234, containerPort: 8000 }],
 *     outbound: 'none', spawner })
 *   child.stdio[4].end('go')                                 // the workload starts now
 *   …  await fwd.stop()
 */
import { existsSync, readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { childEnv } from '../../core/child-env.js';
import { errors } from '../../core/errors.js';
import { freePort, portEnv } from '../../core/instances/ports.js';
import { findOnPath } from './detect.js';
import { LocalSpawner, type Spawned, type Spawner } from './spawner.js';

/** What a namespace may reach beyond itself (drivers.process.outbound). */
export type Outbound = 'none' | 'pasta';

/** The admin's network settings for the process driver (drivers.process). */
export interface NetworkPolicy {
  outbound: Outbound;
  /** Path of pasta (drivers.process.pasta); default: found on PATH. */
  pasta?: string;
  /** UNSAFE old mode: workloads share the host's network namespace (every loopback service). */
  hostNetwork: boolean;
}

export const DEFAULT_NETWORK: NetworkPolicy = { outbound: 'none', hostNetwork: false };

export interface ForwardedPort {
  /** Bound on the host's 127.0.0.1. */
  hostPort: number;
  /** Where the app listens inside its namespace (on 127.0.0.1 or any address). */
  containerPort: number;
}

export interface PastaArgvOptions {
  pasta: string;
  /** A process inside the target namespace (the sandbox's pid 1, from bwrap's --info-fd). */
  pid: number;
  ports: ForwardedPort[];
  outbound: Outbound;
  /** Parent-death signal (util-linux setpriv); undefined: none (pasta may outlive a crash). */
  setpriv?: string;
  /** pasta, started as root, drops to `nobody` before opening the namespace (and fails): keep uid 0. */
  root: boolean;
}

/** The pasta command line (pure, for tests). */
export function pastaArgv(o: PastaArgvOptions): string[] {
  const args = [
    o.pasta,
    '--foreground', '--quiet',
    ...(o.root ? ['--runas', '0'] : []),
    // Inbound: only the declared ports, only on the host's loopback, TCP only.
    ...(o.ports.length ? o.ports.flatMap((p) => ['-t', `127.0.0.1/${p.hostPort}:${p.containerPort}`]) : ['-t', 'none']),
    '-u', 'none',
    // Never from the namespace to the host's loopback, neither by port nor by the gateway.
    '-T', 'none', '-U', 'none', '--no-map-gw',
    // Without outbound the tap stays unconfigured; the handlers it would use are off too.
    ...(o.outbound === 'pasta' ? ['--config-net'] : ['--ipv4-only', '--no-udp', '--no-icmp', '--no-dhcp', '--no-ndp', '--no-dhcpv6', '--no-ra']),
    String(o.pid),
  ];
  return o.setpriv ? [o.setpriv, '--pdeathsig', 'KILL', '--', ...args] : args;
}

/** pasta logs to syslog too and says so on stderr when there is none: not part of an error. */
const NOISE = /^Failed to send \d+ bytes to syslog$/;

/** How long pasta may take to bind its ports (~30 ms here). */
const READY_MS = 10_000;
const POLL_MS = 2;

/** Ports in LISTEN state on 127.0.0.1 in this network namespace (/proc/net/tcp, hex). */
export function listeningOnLoopback(): Set<number> {
  const out = new Set<number>();
  let text: string;
  try {
    text = readFileSync('/proc/net/tcp', 'latin1');
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    // "  0: 0100007F:1F90 00000000:0000 0A …": local address, remote address, state 0A = LISTEN.
    const m = /^\s*\d+: 0100007F:([0-9A-F]{4}) [0-9A-F]{8}:[0-9A-F]{4} 0A /.exec(line);
    if (m) out.add(parseInt(m[1]!, 16));
  }
  return out;
}

/** One pasta attached to one namespace. */
export interface Pasta {
  readonly pid: number;
  /** Resolves when pasta exited, with what it said on stderr. */
  readonly exited: Promise<string>;
  /** Kills it (it keeps no state worth a grace period) and waits for its exit. */
  stop(): Promise<void>;
}

export interface AttachOptions {
  pasta: string;
  pid: number;
  ports: ForwardedPort[];
  outbound: Outbound;
  spawner: Spawner;
}

const SETPRIV = existsSync('/usr/bin/setpriv') ? '/usr/bin/setpriv' : undefined;

/** IPv4 routes of a network namespace (/proc/PID/net/route): each one's destination, hex. */
function routeDestinations(file: string): string[] | undefined {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(1).filter(Boolean).map((l) => l.split('\t')[1] ?? '');
  } catch {
    return undefined;
  }
}

/**
 * Whether pasta's --config-net has given the namespace of `pid` the host's routes: its
 * default route when the host has one, else any route. The workload is released only then,
 * so its first connection out does not find a namespace without routes. A host without any
 * IPv4 route gives nothing to wait for.
 */
function routesCopied(pid: number): boolean {
  const host = routeDestinations('/proc/net/route') ?? [];
  if (!host.length) return true;
  const ns = routeDestinations(`/proc/${pid}/net/route`);
  if (!ns) return true; // the sandbox is gone: the exit check reports it
  return host.includes('00000000') ? ns.includes('00000000') : ns.length > 0;
}

/**
 * Starts pasta for the namespace of `pid` and waits until it listens on every host port and,
 * with outbound `pasta`, has copied the host's routes into the namespace (or exits: then
 * throws with its own message). Resolves at once when there is nothing to wait for.
 */
export async function attachPasta(o: AttachOptions): Promise<Pasta> {
  const argv = pastaArgv({ ...o, setpriv: SETPRIV, root: process.getuid?.() === 0 });
  const child = await o.spawner.spawn(argv, { pipes: 3, detached: true, env: childEnv() });
  const pasta = pastaOf(child);
  const { exited } = pasta;
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + READY_MS;
  for (;;) {
    if (gone) throw new Error(`pasta exited: ${(await exited) || `exit ${child.exitInfo?.code ?? child.exitInfo?.signal}`}`);
    const listening = listeningOnLoopback();
    if (o.ports.every((p) => listening.has(p.hostPort)) && (o.outbound !== 'pasta' || routesCopied(o.pid))) return pasta;
    if (Date.now() > deadline) {
      await pasta.stop();
      throw new Error(`pasta did not bind 127.0.0.1:${o.ports.map((p) => p.hostPort).join(',')} within ${READY_MS / 1000} s`);
    }
    await sleep(POLL_MS);
  }
}

/**
 * A running pasta, from its spawned process: just started, or taken back from the keeper
 * after a restart (keeper-client.ts), still forwarding.
 */
export function pastaOf(child: Spawned): Pasta {
  child.stdin.end();
  child.stdout.resume();
  const said = collect(child.stderr);
  const exited = child.closed.then(async () => said());
  return {
    pid: child.pid,
    exited,
    stop: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** What pasta writes on stderr (its error messages), capped, without the syslog noise. */
function collect(stream: Readable): () => string {
  let text = '';
  stream.on('data', (chunk: Buffer) => {
    if (text.length < 4096) text += chunk.toString('utf8');
  });
  return () =>
    text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !NOISE.test(l))
      .join('; ');
}

/** The host pid of a sandbox's pid 1, from the JSON bwrap writes to its --info-fd. */
export function sandboxPid(info: Readable, timeoutMs = 10_000): Promise<number> {
  return new Promise((resolve, reject) => {
    let text = '';
    let settled = false;
    const done = (err?: Error, pid?: number) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      info.removeAllListeners('data');
      info.destroy();
      if (err) reject(err);
      else resolve(pid!);
    };
    const timer = setTimeout(() => done(new Error('bwrap did not report its sandbox')), timeoutMs);
    info.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      // Only once all of it came: bwrap dies of SIGPIPE if its fd is closed while it writes.
      if (!text.includes('}')) return;
      const pid = Number((JSON.parse(text) as { 'child-pid'?: unknown })['child-pid']);
      done(pid > 1 ? undefined : new Error(`bwrap reported no child-pid: ${text}`), pid);
    });
    info.once('end', () => done(new Error('bwrap exited before it reported its sandbox')));
    info.once('error', (e) => done(e));
  });
}

export interface PastaSupport {
  available: boolean;
  path?: string;
  reason?: string;
}

/** The fix named wherever pasta is missing. */
export const PASTA_FIX = 'install passt (apt-get install passt)';

const pastaCache = new Map<string, Promise<PastaSupport>>();

/**
 * Whether pasta is installed and can attach to a sandbox made by `bwrap` here: tried for
 * real once per process (a sandbox, pasta on a free port, both gone again; ~50 ms).
 */
export function detectPasta(bwrap: string, pastaPath?: string): Promise<PastaSupport> {
  const key = `${bwrap}\0${pastaPath ?? ''}`;
  let probe = pastaCache.get(key);
  if (!probe) pastaCache.set(key, (probe = probePasta(bwrap, pastaPath)));
  return probe;
}

async function probePasta(bwrap: string, pastaPath: string | undefined): Promise<PastaSupport> {
  const pasta = pastaPath ?? (await findOnPath('pasta'));
  if (!pasta) return { available: false, reason: `pasta not found on PATH (${PASTA_FIX})` };
  if (!existsSync(pasta)) return { available: false, reason: `${pasta} does not exist (${PASTA_FIX})` };
  const spawner = new LocalSpawner();
  const argv = [bwrap, '--unshare-user', '--unshare-net', '--die-with-parent', '--ro-bind', '/', '/', '--info-fd', '3', '--', 'sleep', '60'];
  let sandbox;
  try {
    sandbox = await spawner.spawn(argv, { pipes: 4, env: childEnv() });
    const pid = await sandboxPid(sandbox.stdio[3]!);
    const port = await freePort();
    const fwd = await attachPasta({ pasta, pid, ports: [{ hostPort: port, containerPort: port }], outbound: 'none', spawner });
    await fwd.stop();
    return { available: true, path: pasta };
  } catch (e) {
    return { available: false, path: pasta, reason: `pasta cannot attach to a sandbox here: ${(e as Error).message}` };
  } finally {
    sandbox?.kill('SIGKILL');
  }
}

/** How one workload gets its network. */
export interface NetworkPlan {
  /** Share the host's network namespace (no sandbox, or hostNetwork). */
  shareHost: boolean;
  /** Attach this pasta binary to its own namespace. */
  pasta?: string;
  /** Put over the workload's env: PORT and PORT_<NAME> moved to the host ports (shared network). */
  env?: Record<string, string>;
}

/**
 * Decides a workload's network, or refuses it (503 naming the fix): fail closed, so a
 * workload that needs pasta never silently falls back to the host's network.
 *  - `wantsNetwork`: the spec asks for a network at all (instances do; jobs only when asked);
 *  - `ports`: its host ports and where it listens inside.
 */
export function planNetwork(o: {
  sandboxed: boolean;
  policy: NetworkPolicy;
  pasta: PastaSupport | undefined;
  wantsNetwork: boolean;
  ports: (ForwardedPort & { name: string })[];
}): NetworkPlan {
  if (!o.sandboxed || o.policy.hostNetwork) {
    // Nothing can map a declared port here: PORT says the host port, and an app that listens
    // on $PORT works; one with a fixed port is not reachable (docs/isolation.md).
    const moved = o.ports.some((p) => p.containerPort !== p.hostPort);
    const env = moved ? portEnv(o.ports.map((p) => ({ name: p.name, containerPort: p.hostPort }))) : undefined;
    return { shareHost: o.wantsNetwork, ...(env && { env }) };
  }
  return needsPasta({ ...o, ports: o.ports.length }) ? { shareHost: false, pasta: o.pasta!.path! } : { shareHost: false };
}

/**
 * Whether a workload in its own namespace needs pasta (it has ports, or wants the outbound
 * network pasta gives); throws the 503 when it does and pasta does not work here. Also the
 * admission check of a spec, before it is stored.
 */
export function needsPasta(o: { policy: NetworkPolicy; pasta: PastaSupport | undefined; wantsNetwork: boolean; ports: number }): boolean {
  const outbound = o.wantsNetwork && o.policy.outbound === 'pasta';
  if (!o.ports && !outbound) return false;
  if (o.pasta?.available && o.pasta.path) return true;
  const what = o.ports ? 'its ports cannot be reached' : 'it cannot have the outbound network drivers.process.outbound gives';
  throw errors.driverUnavailable(
    `each workload runs in its own network namespace and ${what} without pasta (${o.pasta?.reason ?? 'not probed'}): ` +
      `${PASTA_FIX}, or set drivers.process.hostNetwork: true to share the host's network (UNSAFE: every workload reaches every loopback service)`,
  );
}
