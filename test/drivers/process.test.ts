/**
 * The process driver: the conformance suite in each mode this machine offers, plus what only
 * the process driver promises (no orphans after the server is SIGKILLed, read-only system
 * dirs, leftover clean-up at the next start).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Handle, WorkloadSpec } from '../../src/drivers/driver.js';
import { ProcessDriver } from '../../src/drivers/process/process-driver.js';
import { cgroupLayout, detectCgroups, detectSandbox } from '../../src/drivers/process/detect.js';
import { ROOT } from '../helpers/server.js';
import { describeDriverConformance } from './conformance.js';
import { dataDirOf, exitWithin, killedBySigkill, makeDirs, makeSpec, removeDirs, run, type DriverTestDirs } from './harness.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));

const sandbox = await detectSandbox();
const cg = await detectCgroups();
const cgroupsWork = cg.version !== 'none' && cg.writable;

describe('process driver', () => {
  describeDriverConformance('process (bwrap + cgroups)', async (ctx) => new ProcessDriver({ hide: [ctx.corralData], warn: () => {} }), {
    limits: { memory: cgroupsWork, pids: cgroupsWork, cpu: cgroupsWork },
    isolation: { filesystem: sandbox.available, network: sandbox.available },
    // Its own network namespace even with network=true (network.test.ts); without bwrap the host's.
    sharesHostLoopback: !sandbox.available,
  });

  // The fallback a machine without bubblewrap gets: same lifecycle, limits still enforced.
  describeDriverConformance('process (no sandbox)', async (ctx) => new ProcessDriver({ hide: [ctx.corralData], sandbox: false, warn: () => {} }), {
    limits: { memory: cgroupsWork, pids: cgroupsWork, cpu: cgroupsWork },
    isolation: { filesystem: false, network: false },
    sharesHostLoopback: true,
    mountsDataDir: false,
  });
});

describe('process driver specifics', () => {
  let dirs: DriverTestDirs;
  let driver: ProcessDriver;
  const spec = (id: string, shell: string, extra: Partial<WorkloadSpec> = {}) => makeSpec(dirs, { dataMount: '/data' }, id, shell, extra);

  beforeAll(async () => {
    dirs = await makeDirs();
    driver = new ProcessDriver({ hide: [dirs.corralData], warn: () => {} });
  });
  afterAll(async () => {
    await driver?.close();
    if (dirs) await removeDirs(dirs);
  });

  /** Spawns test/drivers/fixtures/driver-parent.ts and waits for its report. */
  async function startParent(sandbox: boolean): Promise<{ parent: ChildProcess; handle: Handle; pids: number[] }> {
    const dataDir = dataDirOf(dirs, `parent-${sandbox}`);
    await mkdir(dataDir, { recursive: true });
    const parent = spawn(process.execPath, ['--import', 'tsx', path.join(HERE, 'fixtures/driver-parent.ts'), dataDir, sandbox ? 'yes' : 'no'], {
      stdio: ['ignore', 'pipe', 'inherit'],
      cwd: ROOT,
    });
    const line = await new Promise<string>((resolve, reject) => {
      let buf = '';
      parent.stdout!.on('data', (c: Buffer) => {
        buf += c.toString();
        if (buf.includes('\n')) resolve(buf.split('\n')[0]!);
      });
      parent.once('exit', (code) => reject(new Error(`parent exited early (${code})`)));
    });
    const report = JSON.parse(line) as { handle: Handle; pids: number[] };
    return { parent, ...report };
  }

  const alive = (pids: number[]) => pids.filter((pid) => existsSync(`/proc/${pid}`) && !isZombie(pid));

  async function waitUntilGone(pids: number[], ms = 10_000): Promise<number[]> {
    const deadline = Date.now() + ms;
    while (alive(pids).length && Date.now() < deadline) await sleep(50);
    return alive(pids);
  }

  it.skipIf(!sandbox.available)('no workload process outlives a SIGKILLed server (bwrap --die-with-parent)', async () => {
    const { parent, pids } = await startParent(true);
    expect(pids.length).toBeGreaterThanOrEqual(4); // bwrap, bwrap (pid 1), sh, sleeps
    expect(alive(pids)).toEqual(pids);
    parent.kill('SIGKILL');
    expect(await waitUntilGone(pids)).toEqual([]);
  });

  it('without bwrap, leftovers of a SIGKILLed server are killed by adopt() and list() at the next start', async () => {
    const { parent, handle, pids } = await startParent(false);
    expect(alive(pids).length).toBeGreaterThanOrEqual(3); // sh and both sleeps
    parent.kill('SIGKILL');
    await sleep(300);
    // The main process died with its parent (setpriv --pdeathsig); its children did not.
    expect(alive([handle.pid as number])).toEqual([]);
    const next = new ProcessDriver({ hide: [], sandbox: false, cgroups: cgroupsWork, warn: () => {} });
    expect(await next.adopt(handle, { output: () => {}, exit: () => {} })).toBeUndefined();
    await next.list();
    const left = await waitUntilGone(pids, 5000);
    // Without cgroups only the process group is known: the setsid'ed sleep would survive.
    if (cgroupsWork) expect(left).toEqual([]);
    else expect(left.length).toBeLessThanOrEqual(1);
    for (const pid of left) process.kill(pid, 'SIGKILL');
    await next.close();
  });

  it('adopt() leaves alone a process group whose id was reused by a stranger', async () => {
    const stranger = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
    await once(stranger, 'spawn');
    try {
      const stale: Handle = { driver: 'process', instanceId: 'gone', pid: stranger.pid!, pgid: stranger.pid!, startTime: 1, sandboxed: false };
      expect(await driver.adopt(stale, { output: () => {}, exit: () => {} })).toBeUndefined();
      await sleep(200);
      expect(alive([stranger.pid!])).toEqual([stranger.pid]);
    } finally {
      stranger.kill('SIGKILL');
    }
  });

  it.skipIf(!sandbox.available)('system dirs are read-only, /tmp is private, no capabilities', async () => {
    const marker = path.join(tmpdir(), `corral-host-tmp-${process.pid}`);
    await writeFile(marker, 'host');
    const r = await run(driver, spec('ro', [
      'touch /usr/corral-probe 2>/dev/null && echo usr-writable',
      'mkdir /new-top-dir 2>/dev/null && echo root-writable',
      'touch /etc/passwd 2>/dev/null && echo etc-writable',
      `cat ${marker} 2>/dev/null && echo host-tmp-visible`,
      'echo x > /tmp/own && echo tmp-ok',
      'test -e /etc/shadow && echo shadow-visible',
      'grep -q "^CapEff:.*[1-9a-f]" /proc/self/status && echo has-capabilities',
      'echo done',
    ].join('; ')));
    await exitWithin(r);
    await rm(marker);
    expect(r.stdout()).toBe('tmp-ok\ndone\n');
    expect(existsSync('/usr/corral-probe')).toBe(false);
  });

  it.skipIf(!sandbox.available)('a mount that contains corral\'s data dir does not expose it', async () => {
    await writeFile(path.join(dirs.root, 'shared.txt'), 'shared\n');
    const r = await run(driver, spec('overlay', 'cat /mnt/root/shared.txt; ls -A /mnt/root/corral-data; echo end', {
      mounts: [{ source: dirs.root, target: '/mnt/root', readOnly: true }],
    }));
    await exitWithin(r);
    expect(r.stdout()).toBe('shared\nend\n');
  });

  it.skipIf(!cgroupsWork)('the cgroup is removed after the workload exits', async () => {
    const r = await run(driver, spec('cgone', 'true'));
    await exitWithin(r);
    const name = String(r.workload.handle.cgroup);
    const cg = await cgroupLayout();
    expect(name).toMatch(/^cgone\./);
    // Removal happens right after the exit report, off the latency path: give it a moment.
    const mine = async () => (await readdir(path.join(cg!.mounts.memory!, 'corral'), { recursive: true })).filter((f) => String(f).endsWith(name));
    for (let i = 0; i < 100 && (await mine()).length; i++) await sleep(50);
    expect(await mine()).toEqual([]);
  });

  it.skipIf(!cgroupsWork)('a limit the kernel refuses is a bad_request error', async () => {
    await expect(driver.start(spec('badlimit', 'true', { limits: { pids: -5 } }), { output: () => {}, exit: () => {} })).rejects.toMatchObject({
      code: 'bad_request',
    });
  });

  it('a runtime image the driver does not know is refused', async () => {
    await expect(driver.start(spec('img', 'true', { image: 'cobol' }), { output: () => {}, exit: () => {} })).rejects.toMatchObject({
      code: 'bad_request',
    });
  });

  it('without a working bwrap it refuses every workload, naming the fix (fail closed)', async () => {
    const noBwrap = new ProcessDriver({ hide: [], bwrap: '/nonexistent/bwrap', warn: () => {} });
    const refused = { code: 'driver_unavailable', status: 503, message: expect.stringMatching(/apt-get install bubblewrap.*drivers\.process\.sandbox: none/) };
    await expect(noBwrap.admit()).rejects.toMatchObject(refused);
    const refusedSpec = spec('refused', 'echo should-not-run');
    await expect(noBwrap.start(refusedSpec, { output: () => {}, exit: () => {} })).rejects.toMatchObject(refused);
    expect((await noBwrap.isolation()).notes.join('\n')).toMatch(/workloads are refused/);
  });

  it('isolation() reports what this machine gives, and what it does not', async () => {
    const iso = await driver.isolation();
    expect(iso).toMatchObject({ filesystem: sandbox.available, processes: sandbox.available, memory: cgroupsWork, pids: cgroupsWork });
    const bare = await new ProcessDriver({ hide: [], sandbox: false, cgroups: false }).isolation();
    expect(bare).toMatchObject({ filesystem: false, processes: false, network: false, memory: false, cpu: false, pids: false });
    expect(bare.notes.join('\n')).toMatch(/no sandbox/);
  });
});

function isZombie(pid: number): boolean {
  try {
    return /\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}
