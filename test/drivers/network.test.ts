/**
 * Each process-driver workload in its own network namespace (the isolation issue, item 5):
 * pasta's command line and the refusal rules, then real sandboxes. Every connection here goes
 * to 127.0.0.1 — the host's, or a sandbox's own — and nowhere else; absent routes are shown
 * with `ip route get` (which sends nothing) and with loopback listeners this test owns.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkloadSpec } from '../../src/drivers/driver.js';
import { freePort } from '../../src/core/instances/ports.js';
import { detectSandbox } from '../../src/drivers/process/detect.js';
import { detectPasta, pastaArgv, planNetwork, type PastaSupport } from '../../src/drivers/process/network.js';
import { ProcessDriver } from '../../src/drivers/process/process-driver.js';
import { exitWithin, makeDirs, makeSpec, removeDirs, run, type DriverTestDirs, type Run } from './harness.js';

const sandbox = await detectSandbox();
const pasta: PastaSupport = sandbox.available && sandbox.path ? await detectPasta(sandbox.path) : { available: false };
const real = sandbox.available && pasta.available;

/** A TEST-NET-3 address (RFC 5737): only ever named to `ip route get`, never connected to. */
const NOWHERE = '203.0.113.7';

/** Host pids of pasta processes whose command line names `hostPort`. */
const pastasFor = (hostPort: number) => pastas((cmd) => cmd.some((a) => a.startsWith('127.0.0.1/') && a.includes(`/${hostPort}:`)));

/** Host pids of pasta processes attached to the sandbox whose outer bwrap is `bwrapPid`. */
const pastasOf = (bwrapPid: number) =>
  pastas((cmd) => readFileSync(`/proc/${cmd.at(-2)}/stat`, 'utf8').split(') ')[1]?.split(' ')[1] === String(bwrapPid));

function pastas(match: (cmd: string[]) => boolean): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let cmd: string[];
    try {
      cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (!/(^|\/)(pasta|passt[^/]*)$/.test(cmd[0] ?? '')) continue;
    try {
      if (match(cmd)) out.push(Number(name));
    } catch {
      /* its sandbox is gone */
    }
  }
  return out;
}

/** One line from 127.0.0.1:port on the host, or the error code. */
function greet(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let text = '';
    s.setTimeout(5000, () => s.destroy(new Error('ETIMEDOUT')));
    s.on('data', (d) => (text += d.toString()));
    s.on('end', () => resolve(text.trim()));
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

/** A daemon of the docker era: listens on a fixed port (not $PORT), on 127.0.0.1 inside. */
const fixedPortDaemon = (port: number, hello: string) =>
  `exec python3 -c "
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', ${port})); s.listen()
print('listening', flush=True)
while True:
    c, _ = s.accept(); c.sendall(b'${hello}\\\\n'); c.close()
"`;

/** Python that tries each 127.0.0.1 port and prints "port:connected" or "port:refused". */
const probePorts = (ports: number[]) =>
  `python3 -c "
import socket
for p in [${ports.join(',')}]:
    try:
        socket.create_connection(('127.0.0.1', p), timeout=2).close(); print(p, 'connected')
    except OSError as e:
        print(p, 'refused', e.errno)
"`;

describe('pasta command line', () => {
  const base = { pasta: '/usr/bin/pasta', pid: 42, ports: [{ hostPort: 41000, containerPort: 8000 }], root: true };

  it('forwards each port from the host loopback only, and nothing from the namespace to the host', () => {
    const argv = pastaArgv({ ...base, outbound: 'none' });
    expect(argv).toContain('127.0.0.1/41000:8000');
    expect(argv.slice(argv.indexOf('-T'), argv.indexOf('-T') + 2)).toEqual(['-T', 'none']);
    expect(argv.slice(argv.indexOf('-U'), argv.indexOf('-U') + 2)).toEqual(['-U', 'none']);
    expect(argv.slice(argv.indexOf('-u'), argv.indexOf('-u') + 2)).toEqual(['-u', 'none']);
    expect(argv).toContain('--no-map-gw');
    expect(argv).not.toContain('--config-net');
    expect(argv.at(-1)).toBe('42');
  });

  it('configures the namespace only when outbound is pasta; keeps uid 0 only when root', () => {
    expect(pastaArgv({ ...base, outbound: 'pasta' })).toContain('--config-net');
    expect(pastaArgv({ ...base, outbound: 'pasta' })).toContain('--no-map-gw');
    expect(pastaArgv({ ...base, outbound: 'none', root: false })).not.toContain('--runas');
    expect(pastaArgv({ ...base, outbound: 'none', setpriv: '/usr/bin/setpriv' }).slice(0, 4)).toEqual(['/usr/bin/setpriv', '--pdeathsig', 'KILL', '--']);
  });
});

describe('network plan', () => {
  const policy = { outbound: 'none' as const, hostNetwork: false };
  const missing = { available: false, reason: 'pasta not found on PATH' };
  const ports = [{ name: 'web', hostPort: 41000, containerPort: 41000 }];

  it('refuses a workload with ports when pasta is missing, naming both fixes', () => {
    expect(() => planNetwork({ sandboxed: true, policy, pasta: missing, wantsNetwork: true, ports })).toThrow(
      expect.objectContaining({ code: 'driver_unavailable', message: expect.stringMatching(/apt-get install passt.*drivers\.process\.hostNetwork: true/) }),
    );
  });

  it('needs no pasta for a workload without ports and without outbound', () => {
    expect(planNetwork({ sandboxed: true, policy, pasta: missing, wantsNetwork: true, ports: [] })).toEqual({ shareHost: false });
  });

  it('shares the host network only when the admin said so, and then says the host port in PORT', () => {
    const unsafe = { ...policy, hostNetwork: true };
    expect(planNetwork({ sandboxed: true, policy: unsafe, pasta: undefined, wantsNetwork: true, ports })).toEqual({ shareHost: true });
    const declared = [{ name: 'p8000', hostPort: 41000, containerPort: 8000 }];
    expect(planNetwork({ sandboxed: true, policy: unsafe, pasta: undefined, wantsNetwork: true, ports: declared })).toEqual({
      shareHost: true,
      env: { PORT: '41000', PORT_P8000: '41000' },
    });
  });
});

describe.skipIf(!real)('own network namespace per workload (bwrap + pasta)', () => {
  let dirs: DriverTestDirs;
  let driver: ProcessDriver;
  let hostListener: Server;
  let hostPort = 0;
  let accepted = 0;
  const spec = (id: string, shell: string, extra: Partial<WorkloadSpec> = {}) =>
    makeSpec(dirs, { dataMount: '/data' }, id, shell, { network: true, ...extra });
  const runs: Run[] = [];
  const start = async (s: WorkloadSpec) => {
    const r = await run(driver, s);
    runs.push(r);
    return r;
  };

  beforeAll(async () => {
    dirs = await makeDirs();
    driver = new ProcessDriver({ hide: [dirs.corralData], warn: () => {}, network: { outbound: 'none', hostNetwork: false } });
    hostListener = createServer((s) => {
      accepted++;
      s.end('host-secret\n');
    });
    await new Promise<void>((r) => hostListener.listen(0, '127.0.0.1', r));
    hostPort = (hostListener.address() as { port: number }).port;
  });
  afterAll(async () => {
    for (const r of runs) await r.workload.stop('SIGKILL', 0).catch(() => undefined);
    await driver?.close();
    await new Promise((r) => hostListener?.close(r));
    if (dirs) await removeDirs(dirs);
  });

  it('maps a fixed-port daemon: two at once on port 8000 inside, each reached on its own host port', async () => {
    const [pa, pb] = [await freePort(), await freePort()];
    const a = await start(spec('daemon-a', fixedPortDaemon(8000, 'from-a'), { ports: [{ name: 'p8000', containerPort: 8000, hostPort: pa }] }));
    const b = await start(spec('daemon-b', fixedPortDaemon(8000, 'from-b'), { ports: [{ name: 'p8000', containerPort: 8000, hostPort: pb }] }));
    await a.waitFor(/listening/);
    await b.waitFor(/listening/);
    expect(await greet(pa)).toBe('from-a');
    expect(await greet(pb)).toBe('from-b');
    expect(pastasFor(pa)).not.toEqual([]);
  });

  it.skipIf(process.getuid?.() !== 0)('lets a daemon bind a port below 1024 in its own namespace (bwrap run by root)', async () => {
    const p = await freePort();
    const r = await start(spec('low-port', fixedPortDaemon(80, 'from-80'), { ports: [{ name: 'p80', containerPort: 80, hostPort: p }] }));
    await r.waitFor(/listening/);
    expect(await greet(p)).toBe('from-80');
  });

  it("cannot reach another workload's host or declared port, nor a host loopback service", async () => {
    const pa = await freePort();
    const victim = await start(spec('victim', fixedPortDaemon(8001, 'victim'), { ports: [{ name: 'p8001', containerPort: 8001, hostPort: pa }] }));
    await victim.waitFor(/listening/);
    const before = accepted;
    const attacker = await start(spec('attacker', probePorts([pa, 8001, hostPort]), { ports: [{ name: 'web', containerPort: 8080, hostPort: await freePort() }] }));
    await exitWithin(attacker);
    expect(attacker.stdout()).toMatch(new RegExp(`^${pa} refused`, 'm'));
    expect(attacker.stdout()).toMatch(/^8001 refused/m);
    expect(attacker.stdout()).toMatch(new RegExp(`^${hostPort} refused`, 'm'));
    expect(accepted).toBe(before);
    // The victim still answers through its forwarded port.
    expect(await greet(pa)).toBe('victim');
  });

  it('has no route out with outbound none: its tap is down, without address', async () => {
    const r = await start(spec('routes', `ip -o -4 addr; ip -4 route; ip route get ${NOWHERE} 2>&1; ip route get 127.0.0.1`, { ports: [{ name: 'web', containerPort: 8080, hostPort: await freePort() }] }));
    await exitWithin(r);
    expect(r.stdout()).toMatch(/Network is unreachable/);
    expect(r.stdout()).toMatch(/^local 127\.0\.0\.1 dev lo/m);
    expect(r.stdout()).not.toMatch(/default via/);
    expect(r.stdout().match(/ inet /g)).toHaveLength(1); // lo only
  });

  it('leaves no pasta behind when the workload exits, is stopped, or the driver closes', async () => {
    const p1 = await freePort();
    const exits = await start(spec('short', 'sleep 0.3', { ports: [{ name: 'web', containerPort: 8080, hostPort: p1 }] }));
    expect(pastasFor(p1)).not.toEqual([]);
    await exitWithin(exits);
    expect(pastasFor(p1)).toEqual([]);

    const p2 = await freePort();
    const stopped = await start(spec('long', 'sleep 600', { ports: [{ name: 'web', containerPort: 8080, hostPort: p2 }] }));
    expect(pastasFor(p2)).not.toEqual([]);
    await stopped.workload.stop('SIGTERM', 2000);
    expect(pastasFor(p2)).toEqual([]);

    const own = new ProcessDriver({ hide: [dirs.corralData], warn: () => {} });
    const p3 = await freePort();
    await run(own, spec('closing', 'sleep 600', { ports: [{ name: 'web', containerPort: 8080, hostPort: p3 }] }));
    expect(pastasFor(p3)).not.toEqual([]);
    await own.close();
    expect(pastasFor(p3)).toEqual([]);
  });

  it('stops the workload when its pasta dies (unreachable, it must not look alive)', async () => {
    const p = await freePort();
    const r = await start(spec('orphaned', 'sleep 600', { ports: [{ name: 'web', containerPort: 8080, hostPort: p }] }));
    const [pid] = pastasFor(p);
    process.kill(pid!, 'SIGKILL');
    await exitWithin(r);
    expect(r.stderr()).toMatch(/network forwarder \(pasta\) exited/);
  });
});

describe.skipIf(!real)('outbound: pasta', () => {
  let dirs: DriverTestDirs;
  let driver: ProcessDriver;
  let hostListener: Server;
  let hostPort = 0;
  let accepted = 0;

  beforeAll(async () => {
    dirs = await makeDirs();
    driver = new ProcessDriver({ hide: [dirs.corralData], warn: () => {}, network: { outbound: 'pasta', hostNetwork: false } });
    hostListener = createServer((s) => {
      accepted++;
      s.end();
    });
    await new Promise<void>((r) => hostListener.listen(0, '127.0.0.1', r));
    hostPort = (hostListener.address() as { port: number }).port;
  });
  afterAll(async () => {
    await driver?.close();
    await new Promise((r) => hostListener?.close(r));
    if (dirs) await removeDirs(dirs);
  });

  it("gets a route out, but its 127.0.0.1 is its own and the gateway is not the host's loopback", async () => {
    const before = accepted;
    const shell = `ip -4 route; ip route get 127.0.0.1; ${probePorts([hostPort])}; sleep 600`;
    const r = await run(driver, makeSpec(dirs, { dataMount: '/data' }, 'outbound', shell, { network: true }));
    await r.waitFor(/refused|connected/);
    // pasta copies the host's routes: a route out exists only where the host has one
    // (CI machines may have none at all).
    const hostDefault = /^default /m.test(execFileSync('ip', ['-4', 'route', 'show', 'default'], { encoding: 'utf8' }));
    if (hostDefault) expect(r.stdout()).toMatch(/^default via /m);
    else expect(r.stdout()).not.toMatch(/^default /m);
    expect(r.stdout()).toMatch(/^local 127\.0\.0\.1 dev lo/m);
    expect(r.stdout()).toMatch(new RegExp(`^${hostPort} refused`, 'm'));
    expect(accepted).toBe(before);
    // What pasta was told (read, not tried: the gateway leads off this machine).
    const [pid] = pastasOf(Number(r.workload.handle.pid));
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    expect(argv).toEqual(expect.arrayContaining(['--config-net', '--no-map-gw', '-T', '-U']));
    expect(argv[argv.indexOf('-T') + 1]).toBe('none');
    expect(argv[argv.indexOf('-U') + 1]).toBe('none');
    await r.workload.stop('SIGKILL', 0);
    await sleep(0);
  });
});
