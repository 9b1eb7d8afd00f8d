/**
 * Process-driver workloads outlive their manager through a per-host keeper (keeper.ts;
 * docs/instances.md, "Outliving the manager"). Each test runs `corral serve` as a child in
 * its own process group (spawnServer, the keeper on as by default) on a real data dir, with
 * instances in real sandboxes serving on real ports, and kills the server the hard way.
 * Needs `npm run build` (spawnServer runs bin/corral.js).
 */
import { spawn } from 'node:child_process';
import { rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { childEnv } from '../../src/core/child-env.js';
import { KeeperClient } from '../../src/drivers/process/keeper-client.js';
import { takeSpool } from '../../src/drivers/process/keeper-protocol.js';
import { api, spawnServer, tempDir, type ChildServer } from '../helpers/server.js';
import { createInstance, processesMatching, settledProcessesMatching, waitFor, waitForState } from '../instances/helpers.js';
import { adminToken, alive, APP, keeperPid, killGroup, logText, poke, sleep, standaloneKeeper, ticksIn, ticksWritten, waitGone, waitUntil } from './keeper-helpers.js';

describe('the keeper: instances outlive their manager', { timeout: 120_000 }, () => {
  let server: ChildServer | undefined;
  const dataDirs: string[] = [];
  const cleanup: (() => void)[] = [];
  const newDataDir = async () => {
    const dir = await tempDir();
    dataDirs.push(dir);
    return dir;
  };
  // The embedded default (no drivers.process.keeper set): the keeper is on.
  const serve = (data: string) => spawnServer(data, {}, [], { detached: true });

  afterEach(async () => {
    if (server) await killGroup(server).catch(() => undefined);
    server = undefined;
    for (const dir of dataDirs.splice(0)) {
      try {
        process.kill(keeperPid(dir), 'SIGKILL');
      } catch {
        /* no keeper left */
      }
      await rm(dir, { recursive: true, force: true });
    }
    for (const fn of cleanup.splice(0)) fn();
  }, 60_000);

  it('SIGKILL of the manager’s process group: the instance keeps serving, the next manager re-adopts it (same generation, same processes, same pasta) with the outage’s lines in its logs, in order; attach, stdin, signal and stop work after', async () => {
    const data = await newDataDir();
    const marker = `keeper-${process.pid}-${Date.now()}`;
    server = await serve(data);
    let token = await adminToken(server.url);
    const inst = await createInstance(server, token, { name: 'web', command: ['python3', '-c', `${APP}# ${marker}`], ports: [{ name: 'http', port: 8000 }] });
    const port = inst.ports[0].hostPort as number;
    await waitFor(server, token, inst.id, () => true);
    const until = Date.now() + 10_000;
    while ((await poke(port)) !== 'alive' && Date.now() < until) await sleep(100);
    expect(await poke(port)).toBe('alive');
    const before = await settledProcessesMatching(marker);
    const pastaBefore = await processesMatching(`127.0.0.1/${port}:`);
    expect(before.length).toBeGreaterThan(0);
    expect(pastaBefore).toHaveLength(1);

    await killGroup(server);
    const outageFrom = Date.now();
    server = undefined;
    // No manager runs: it answers throughout.
    const answers: string[] = [];
    for (let i = 0; i < 10; i++) {
      answers.push(await poke(port));
      await sleep(150);
    }
    expect(answers).toEqual(Array(10).fill('alive'));

    const outageTo = Date.now();
    server = await serve(data);
    token = await adminToken(server.url);
    const back = await waitForState(server, token, inst.id, 'running');
    expect(back.generation).toBe(1);
    expect((await processesMatching(marker)).sort()).toEqual(before);
    expect(await processesMatching(`127.0.0.1/${port}:`)).toEqual(pastaBefore);
    expect(await poke(port)).toBe('alive');

    // Every line written while no manager ran is in the log, in order with the others, once.
    // (What the SIGKILLed manager had read but not yet written to its log file is lost with
    // it: its write-behind, a few lines at most, right at the kill — not the keeper's part.)
    await sleep(500);
    const ticks = ticksIn(await logText(server, token, inst.id));
    const outage = ticksWritten(data, inst.id, outageFrom, outageTo);
    expect(outage.length).toBeGreaterThan(5);
    expect(ticks).toEqual([...ticks].sort((x, y) => x - y));
    expect(new Set(ticks).size).toBe(ticks.length);
    const from = ticks.indexOf(outage[0]!);
    expect(ticks.slice(from, from + outage.length)).toEqual(outage);
    // …and the lines after it follow on without a gap.
    const last = ticks.at(-1)!;
    expect(ticks.slice(from)).toEqual(Array.from({ length: last - outage[0]! + 1 }, (_, i) => outage[0]! + i));

    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/api/v1/instances/${inst.id}/attach`, { headers: { authorization: `Bearer ${token}` } });
    // Lines read together share a text frame (joined by \n): keep lines, not frames.
    const frames: string[] = [];
    ws.on('message', (d) => frames.push(...d.toString().split('\n')));
    await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
    ws.send('hello\n');
    await waitUntil(() => frames.includes('got hello'), 30_000);
    expect((await api(server, token, 'POST', `/api/v1/instances/${inst.id}/signal`, { signal: 'SIGUSR1' })).status).toBe(200);
    await waitUntil(() => frames.includes('usr1'), 30_000);
    ws.close();

    expect((await api(server, token, 'POST', `/api/v1/instances/${inst.id}/stop`)).status).toBe(200);
    const stopped = await waitForState(server, token, inst.id, 'stopped');
    expect(stopped.exitCode).toBe(0); // its SIGTERM handler ran: the stop signal reached it
    expect(await logText(server, token, inst.id)).toContain('term');
    expect(await waitGone(marker)).toEqual([]);
  });

  it('a workload that ended while no manager ran is recorded with its real exit code, then the restart policy applies', async () => {
    const data = await newDataDir();
    server = await serve(data);
    let token = await adminToken(server.url);
    const inst = await createInstance(server, token, { name: 'brief', shell: 'echo started; sleep 1.5; echo leaving; exit 7', restart: 'never' });
    expect(inst.state).toBe('running');
    await killGroup(server);
    server = undefined;
    await sleep(3_000);

    server = await serve(data);
    token = await adminToken(server.url);
    const done = await waitForState(server, token, inst.id, 'failed');
    expect(done.exitCode).toBe(7);
    expect(done.generation).toBe(1);
    const logs = await logText(server, token, inst.id);
    expect(logs).toContain('leaving');
    expect(logs).toMatch(/exited with code 7/);
  });

  it('a pid reused by another process is never adopted (start time checked)', async () => {
    const data = await newDataDir();
    const marker = `reuse-${process.pid}-${Date.now()}`;
    server = await serve(data);
    let token = await adminToken(server.url);
    const inst = await createInstance(server, token, { name: 'sleeper', shell: `sleep 1000 # ${marker}` });
    await killGroup(server);
    server = undefined;
    // The keeper dies too (SIGKILL: no exit records), and its workload with it.
    process.kill(keeperPid(data), 'SIGKILL');
    expect(await waitGone(marker)).toEqual([]);
    // A stranger now owns the pids the handle names (as if the kernel had handed them out again).
    // It leads its own group, as the workload did: killing the recorded group would hit it.
    const stranger = spawn('sleep', ['1000'], { stdio: 'ignore', detached: true });
    cleanup.push(() => stranger.kill('SIGKILL'));
    const db = new Database(path.join(data, 'corral.db'));
    const row = db.prepare('SELECT handle FROM instances WHERE id = ?').get(inst.id) as { handle: string };
    const handle = JSON.parse(row.handle) as Record<string, unknown>;
    Object.assign(handle, { pid: stranger.pid, pgid: stranger.pid, keeperPid: stranger.pid });
    db.prepare('UPDATE instances SET handle = ? WHERE id = ?').run(JSON.stringify(handle), inst.id);
    db.close();

    server = await serve(data);
    token = await adminToken(server.url);
    await waitFor(server, token, inst.id, (i) => i.state === 'running' && i.generation === 2);
    expect(alive(stranger.pid!)).toBe(true);
    expect(await processesMatching(marker)).not.toHaveLength(0);
  });

  it('SIGTERM of the server detaches instances (they keep running, desired state running) and the next server re-adopts them', async () => {
    const data = await newDataDir();
    const marker = `detach-${process.pid}-${Date.now()}`;
    server = await serve(data);
    let token = await adminToken(server.url);
    const inst = await createInstance(server, token, { name: 'calm', shell: `sleep 1000 # ${marker}` });
    const before = await settledProcessesMatching(marker);
    const stopping = server;
    expect(await stopping.kill('SIGTERM')).toEqual({ code: 0, signal: null });
    server = undefined;
    expect((await processesMatching(marker)).sort()).toEqual(before);
    // Whoever stopped it is told what still runs and how to stop it.
    expect(stopping.output()).toMatch(/1 instance keep running without this server .*corral keeper status\|stop/);

    const outageTo = Date.now();
    server = await serve(data);
    token = await adminToken(server.url);
    const back = await waitForState(server, token, inst.id, 'running');
    expect(back.generation).toBe(1);
    expect(back.desiredState).toBe('running');
    expect((await processesMatching(marker)).sort()).toEqual(before);
  });

  it('SIGTERM of the keeper stops every workload with its stop signal and grace; they are started again (generation + 1)', async () => {
    const data = await newDataDir();
    const marker = `keeper-term-${process.pid}-${Date.now()}`;
    server = await serve(data);
    const token = await adminToken(server.url);
    const inst = await createInstance(server, token, {
      name: 'graceful',
      shell: `trap 'echo got TERM; exit 0' TERM; while :; do sleep 0.1; done # ${marker}`,
      restart: 'always',
    });
    const first = await processesMatching(marker);
    const keeper = keeperPid(data);
    process.kill(keeper, 'SIGTERM');
    await waitUntil(() => !alive(keeper));
    await waitFor(server, token, inst.id, (i) => i.state === 'running' && i.generation === 2);
    expect(await logText(server, token, inst.id)).toContain('got TERM');
    const second = await processesMatching(marker);
    expect(second.some((p) => first.includes(p))).toBe(false);
  });

  // Two managers on one host (PostgreSQL): test/cluster/keeper-takeover.test.ts.
});


describe('the keeper’s spool', { timeout: 60_000 }, () => {
  const cleanupSpool: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const fn of cleanupSpool.splice(0)) await fn();
  }, 30_000);

  it('while no manager holds a workload the keeper spools its output, bounded (the oldest half goes, with a note), and hands it back in order', async () => {
    // Whatever happens below, the keeper and its child go (SIGTERM stops its children).
    const { dir, keeperDir, first, pid: keeper } = await standaloneKeeper(cleanupSpool);
    const spool = path.join(keeperDir, 'run', 'w', 'spool');
    // 20 MB of x once the manager left (the file `$1` appears), then "end": more than the spool keeps (2 × 8 MB).
    const script = 'read go; echo first; while [ ! -e "$1" ]; do sleep 0.05; done; head -c 20000000 /dev/zero | tr "\\0" x; echo; echo end; exec sleep 1000';
    const left = path.join(dir, 'left');
    const child = await first.spawn(['sh', '-c', script, 'sh', left], { pipes: 3, detached: true, env: childEnv(), key: 'w', spool });
    const got: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => got.push(c));
    child.stdin.write('go\n');
    await waitUntil(() => Buffer.concat(got).toString().includes('first'));
    first.close();
    await writeFile(left, '');
    let size = -1;
    for (let same = 0; same < 5; ) {
      await sleep(200);
      const now = (await stat(spool).catch(() => ({ size: 0 }))).size + (await stat(`${spool}.old`).catch(() => ({ size: 0 }))).size;
      same = now === size ? same + 1 : 0;
      size = now;
    }

    const second = new KeeperClient(keeperDir);
    const taken = (await second.take('w'))!;
    expect(taken.child.pid).toBe(child.pid);
    const entries = takeSpool(taken.spool!);
    const text = Buffer.concat(entries.map((e) => e.data)).toString();
    expect(text.length).toBeLessThanOrEqual((16 << 20) + 200);
    expect(text).toMatch(/^corral: \d+ bytes of output written while no manager ran were dropped/);
    expect(text.endsWith('x\nend\n')).toBe(true);
    expect(text).not.toContain('first'); // read by the first manager, never by the keeper too
    expect(entries.every((e, i) => i === 0 || e.at >= entries[i - 1]!.at)).toBe(true);
    // The second manager now holds it: stdin reaches it, and it ends through the keeper.
    taken.child.kill('SIGKILL');
    expect((await taken.child.exited).signal).toBe('SIGKILL');
    second.close();
  });
});
