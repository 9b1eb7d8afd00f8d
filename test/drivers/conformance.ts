/**
 * The driver conformance suite: what every Driver (process, docker, swarm) must do, checked
 * with real workloads. A driver file calls describeDriverConformance() with a factory and
 * the options saying which isolation this machine can give it (tests of an absent feature
 * are skipped, visibly, rather than passing vacuously).
 *
 * Workloads use only POSIX sh and busybox-level tools (plus `tcpConnect`) so that container
 * images built from busybox pass too.
 */
import { createServer, type Server } from 'node:net';
import { readFile, stat, writeFile, mkdir } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Driver } from '../../src/drivers/driver.js';
import { dataDirOf, exitWithin, killedBySigkill, makeDirs, makeSpec, removeDirs, run, type DriverTestDirs } from './harness.js';

export interface ConformanceContext {
  /** Stands for corral's data dir: the driver must hide it (and every instance dir in it). */
  corralData: string;
}

export interface ConformanceOptions {
  /** Where the data dir appears inside workloads. */
  dataMount?: string;
  /** Image (container drivers) or runtime name; undefined = host system. */
  image?: string;
  /**
   * Which limits this driver enforces on this machine (stats() reporting usage comes with the
   * memory limit); cpu left out = the CPU quota test is skipped.
   */
  limits: { memory: boolean; pids: boolean; cpu?: boolean };
  /** Which isolation this driver gives on this machine. */
  isolation: { filesystem: boolean; network: boolean };
  /** With network=true, the workload reaches the host's 127.0.0.1 (process driver). */
  sharesHostLoopback: boolean;
  /**
   * false when workloads see host paths instead of a mounted data dir (the process driver
   * without bwrap, which runs them in the host dir itself). Default true.
   */
  mountsDataDir?: boolean;
  /** argv that connects to 127.0.0.1:port and exits 0 on success (default: node). */
  tcpConnect?: (port: number) => string[];
  /** Why write() cannot reach this driver's workloads; set = the stdin test is skipped. */
  noStdin?: string;
}

const nodeConnect = (port: number) => [
  'node', '-e',
  `require('net').connect(${port},'127.0.0.1').on('connect',()=>{console.log('connected');process.exit(0)}).on('error',(e)=>{console.log('refused '+e.code);process.exit(1)})`,
];

export function describeDriverConformance(
  name: string,
  makeDriver: (ctx: ConformanceContext) => Promise<Driver>,
  opts: ConformanceOptions,
): void {
  describe(`driver conformance: ${name}`, () => {
    let dirs: DriverTestDirs;
    let driver: Driver;
    const defaults = () => ({ dataMount: opts.dataMount ?? '/data', image: opts.image });
    const spec = (id: string, shell: string, extra = {}) => makeSpec(dirs, defaults(), id, shell, extra);

    beforeAll(async () => {
      dirs = await makeDirs();
      driver = await makeDriver({ corralData: dirs.corralData });
    });
    afterAll(async () => {
      await driver?.close();
      if (dirs) await removeDirs(dirs);
    });

    it('start → output lines on both streams → exit code, reported once', async () => {
      const r = await run(driver, spec('out', 'echo one; echo two; echo oops >&2; exit 3'));
      const status = await exitWithin(r);
      expect(status).toEqual({ code: 3, signal: null, oomKilled: false });
      expect(r.stdout()).toBe('one\ntwo\n');
      expect(r.stderr()).toBe('oops\n');
      await sleep(50);
      expect(r.exitCalls()).toBe(1);
    });

    it.skipIf(!!opts.noStdin)(`stdin round trip${opts.noStdin ? ` (skipped: ${opts.noStdin})` : ''}`, async () => {
      const r = await run(driver, spec('stdin', 'read line; echo "got:$line"; read line2; echo "got:$line2"'));
      r.workload.write('ping\n');
      await r.waitFor(/got:ping\n/);
      r.workload.write(Buffer.from('pong\n'));
      expect((await exitWithin(r)).code).toBe(0);
      expect(r.stdout()).toBe('got:ping\ngot:pong\n');
    });

    it('env and cwd come from the spec, nothing else leaks in', async () => {
      const mount = defaults().dataMount;
      process.env.CORRAL_SECRET_PROBE = 'leaked'; // the server's own env must not reach workloads
      let r;
      try {
        r = await run(driver, spec('env', 'echo "foo=$FOO"; pwd; echo "secret=${CORRAL_SECRET_PROBE:-unset}"', {
          env: { PATH: '/usr/local/bin:/usr/bin:/bin', FOO: 'bar baz' },
        }));
      } finally {
        delete process.env.CORRAL_SECRET_PROBE;
      }
      await exitWithin(r);
      const cwd = opts.mountsDataDir === false ? dataDirOf(dirs, 'env') : mount;
      expect(r.stdout(), r.stderr()).toBe(`foo=bar baz\n${cwd}\nsecret=unset\n`);
    });

    it('a workload that exits politely on SIGTERM is not killed', async () => {
      const r = await run(driver, spec('polite', 'trap "echo bye; exit 7" TERM; echo ready; while :; do sleep 0.1; done'));
      await r.waitFor(/ready/);
      await r.workload.stop('SIGTERM', 10_000);
      expect(await exitWithin(r)).toMatchObject({ code: 7, signal: null });
      expect(r.stdout()).toContain('bye');
    });

    it('stop with grace: a workload that ignores SIGTERM gets SIGKILL after the grace period', async () => {
      const r = await run(driver, spec('stubborn', 'trap "echo ignored" TERM; echo ready; while :; do sleep 0.1; done'));
      await r.waitFor(/ready/);
      const t = Date.now();
      await r.workload.stop('SIGTERM', 700);
      const status = await exitWithin(r);
      expect(Date.now() - t).toBeGreaterThanOrEqual(600);
      expect(killedBySigkill(status)).toBe(true);
      expect(r.stdout()).toContain('ignored');
    });

    it('stop kills the whole tree, grandchildren in other sessions included', async () => {
      // Two grandchildren write heartbeats into the data dir: one ignores SIGTERM, one left
      // the process group with setsid.
      const beat = (file: string) => `while :; do date +%s%N > ${file}; sleep 0.05; done`;
      const r = await run(driver, spec('tree', [
        `(trap "" TERM; ${beat('hb1')}) &`,
        `setsid sh -c '${beat('hb2')}' &`,
        'echo started; wait',
      ].join('\n')));
      await r.waitFor(/started/);
      const dir = dataDirOf(dirs, 'tree');
      await waitForFile(`${dir}/hb1`);
      await waitForFile(`${dir}/hb2`);
      await r.workload.stop('SIGTERM', 500);
      await exitWithin(r);
      await sleep(200);
      const before = [await readFile(`${dir}/hb1`, 'utf8'), await readFile(`${dir}/hb2`, 'utf8')];
      await sleep(600);
      const after = [await readFile(`${dir}/hb1`, 'utf8'), await readFile(`${dir}/hb2`, 'utf8')];
      expect(after).toEqual(before);
    });

    it('the data dir persists across two starts', async () => {
      const first = await run(driver, spec('persist', 'echo kept > state.txt'));
      expect((await exitWithin(first)).code).toBe(0);
      const second = await run(driver, spec('persist', 'cat state.txt', { generation: 2 }));
      expect((await exitWithin(second)).code).toBe(0);
      expect(second.stdout()).toBe('kept\n');
      expect(await readFile(`${dataDirOf(dirs, 'persist')}/state.txt`, 'utf8')).toBe('kept\n');
    });

    it('signal() delivers to the workload; an unknown signal is a bad_request error', async () => {
      const r = await run(driver, spec('sig', 'trap "echo usr1" USR1; echo ready; while :; do sleep 0.1; done'));
      await r.waitFor(/ready/);
      r.workload.signal('SIGUSR1');
      await r.waitFor(/usr1/);
      expect(() => r.workload.signal('SIGNOPE')).toThrow(expect.objectContaining({ code: 'bad_request' }));
      await r.workload.stop('SIGKILL', 0);
      expect(killedBySigkill(await exitWithin(r))).toBe(true);
    });

    it.skipIf(!opts.isolation.filesystem)('a mount whose source does not exist is a bad_request error', async () => {
      const missing = `${dirs.root}/no-such-dir`;
      await expect(
        driver.start(spec('nomount', 'true', { mounts: [{ source: missing, target: '/src', readOnly: true }] }), { output: () => {}, exit: () => {} }),
      ).rejects.toMatchObject({ code: 'bad_request' });
    });

    it.skipIf(!opts.limits.memory)('stats report memory, CPU seconds and pids', async () => {
      const r = await run(driver, spec('stats', 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; echo busy-done; sleep 30'));
      await r.waitFor(/busy-done/, 20_000);
      const stats = await r.workload.stats();
      expect(stats.memoryBytes).toBeGreaterThan(0);
      expect(stats.cpuSeconds).toBeGreaterThan(0.01);
      expect(stats.pids).toBeGreaterThanOrEqual(2);
      await r.workload.stop('SIGTERM', 2000);
      await exitWithin(r);
    });

    it.skipIf(!opts.limits.cpu)('the CPU quota caps a busy loop', async () => {
      const r = await run(driver, spec('cpu', 'echo go; while :; do :; done', { limits: { cpus: 0.2 } }));
      await r.waitFor(/go/);
      const t = Date.now();
      await sleep(2000);
      const { cpuSeconds } = await r.workload.stats();
      const wall = (Date.now() - t) / 1000;
      await r.workload.stop('SIGKILL', 0);
      await exitWithin(r);
      // 0.2 of a core over ~2 s is ~0.4 s; an uncapped loop would get far more.
      expect(cpuSeconds).toBeGreaterThan(0.05);
      expect(cpuSeconds!).toBeLessThan(0.2 * wall + 0.25);
    });

    it.skipIf(!opts.limits.pids)('a fork bomb is stopped by the pids limit and the host stays fine', async () => {
      const r = await run(driver, spec('bomb', 'echo lit; b() { b | b & }; b; sleep 3; echo survived', {
        limits: { pids: 64, memoryBytes: 256 * 1024 * 1024 },
      }));
      await r.waitFor(/lit/);
      await sleep(1500);
      const stats = await r.workload.stats();
      if (stats.pids !== undefined) expect(stats.pids).toBeLessThanOrEqual(64);
      // The host can still start processes while the bomb is contained.
      const { stdout } = await promisify(execFile)('sh', ['-c', 'echo host-ok']);
      expect(stdout).toBe('host-ok\n');
      await r.workload.stop('SIGKILL', 0);
      await exitWithin(r);
      expect(r.stderr()).toMatch(/fork|resource|retry/i);
    });

    it.skipIf(!opts.limits.memory)('a memory hog is killed by the memory limit and reported as oomKilled', async () => {
      const r = await run(driver, spec('hog', 'dd if=/dev/zero of=/dev/null bs=300M count=1; echo "dd=$?"; exit 0', {
        limits: { memoryBytes: 64 * 1024 * 1024 },
      }));
      const status = await exitWithin(r);
      expect(status.oomKilled).toBe(true);
      expect(r.stdout()).toMatch(/dd=(137|1)\b/);
    });

    it('a workload under its memory limit is not reported as oomKilled', async () => {
      const r = await run(driver, spec('modest', 'dd if=/dev/zero of=/dev/null bs=4M count=1 2>/dev/null; echo ok', {
        limits: { memoryBytes: 128 * 1024 * 1024 },
      }));
      expect(await exitWithin(r)).toEqual({ code: 0, signal: null, oomKilled: false });
    });

    it.skipIf(!opts.isolation.filesystem)("cannot read another workload's data dir nor corral's data dir", async () => {
      const other = dataDirOf(dirs, 'victim');
      await mkdir(other, { recursive: true });
      await writeFile(`${other}/private.txt`, 'VICTIM-DATA\n');
      const r = await run(driver, spec('snoop', [
        `cat ${dirs.secretFile} 2>&1 || echo no-secret`,
        `cat ${other}/private.txt 2>&1 || echo no-victim`,
        `ls ${dirs.corralData} 2>&1 || echo no-data-dir`,
      ].join('; ')));
      await exitWithin(r);
      expect(r.stdout()).not.toContain('TOP-SECRET-KEY');
      expect(r.stdout()).not.toContain('VICTIM-DATA');
      expect(r.stdout()).not.toMatch(/^signing\.key$/m);
      expect(r.stdout()).toContain('no-secret');
      expect(r.stdout()).toContain('no-victim');
    });

    describe('network', () => {
      let server: Server;
      let port = 0;
      let accepted = 0;
      beforeAll(async () => {
        server = createServer((s) => {
          accepted++;
          s.end();
        });
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        port = (server.address() as { port: number }).port;
      });
      afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
      const connect = () => (opts.tcpConnect ?? nodeConnect)(port);

      it.skipIf(!opts.isolation.network)('network=false: cannot connect to a listener on the host', async () => {
        const before = accepted;
        const r = await run(driver, { ...spec('offline', ''), command: connect(), network: false });
        const status = await exitWithin(r);
        expect(status.code).not.toBe(0);
        expect(r.stdout()).not.toContain('connected');
        expect(accepted).toBe(before);
      });

      it.skipIf(!opts.sharesHostLoopback)('network=true: reaches the host loopback (the control case)', async () => {
        const before = accepted;
        const r = await run(driver, { ...spec('online', ''), command: connect(), network: true });
        expect((await exitWithin(r)).code).toBe(0);
        expect(r.stdout()).toContain('connected');
        expect(accepted).toBe(before + 1);
      });
    });
  });
}

async function waitForFile(file: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await stat(file).then(() => true, () => false))) {
    if (Date.now() > deadline) throw new Error(`${file} never appeared`);
    await sleep(20);
  }
}
