/**
 * The server as a child process: SIGKILL leaves no orphan and the instance runs again after
 * a restart; SIGTERM gives children their stop signal and grace period and waits for them.
 * Needs `npm run build` (spawnServer runs bin/corral.js).
 *
 * These are the rules WITHOUT the keeper (drivers.process.keeper: false), which the servers
 * here opt into: with it (the default) workloads outlive the server on purpose, and
 * test/drivers/keeper.test.ts checks that instead.
 */
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, createToken, KEEPER_OFF_ENV, login, spawnServer, tempDir, type ChildServer } from '../helpers/server.js';
import { createInstance, processesMatching, waitFor, waitForState } from './helpers.js';

async function adminToken(url: string): Promise<string> {
  return createToken(url, await login(url, 'admin', ADMIN_PASSWORD), `t-${Date.now()}`);
}

// Generous: on a loaded machine (the full suite on 2 cores) the kernel took over 10 s once to
// tear a killed sandbox down; an orphan never goes at all.
async function waitGone(marker: string, ms = 30_000): Promise<number[]> {
  const until = Date.now() + ms;
  let left = await processesMatching(marker);
  while (left.length && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 100));
    left = await processesMatching(marker);
  }
  return left;
}

// Each test starts the server two or three times; on a busy CI machine that takes a while.
describe('server crash and shutdown', { timeout: 90_000 }, () => {
  let server: ChildServer | undefined;
  const dataDirs: string[] = [];
  const newDataDir = async () => {
    const dir = await tempDir();
    dataDirs.push(dir);
    return dir;
  };
  afterEach(async () => {
    await server?.kill('SIGKILL');
    server = undefined;
    for (const dir of dataDirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });

  it('SIGKILL of the server leaves no orphan; the instance runs again after a restart', async () => {
    const data = await newDataDir();
    const marker = `crash-${process.pid}-${Date.now()}`;
    server = await spawnServer(data, KEEPER_OFF_ENV);
    let token = await adminToken(server.url);
    const inst = await createInstance(server, token, { name: 'survivor', shell: `sleep 1000 # ${marker}` });
    expect(inst.state).toBe('running');
    expect(await processesMatching(marker)).not.toHaveLength(0);

    await server.kill('SIGKILL');
    expect(await waitGone(marker)).toEqual([]);

    server = await spawnServer(data, KEEPER_OFF_ENV);
    token = await adminToken(server.url);
    const back = await waitFor(server, token, inst.id, (i) => i.state === 'running' && i.generation === 2);
    expect(back.desiredState).toBe('running');
    expect(await processesMatching(marker)).not.toHaveLength(0);
  });

  it('a stopped instance stays stopped across a restart', async () => {
    const data = await newDataDir();
    server = await spawnServer(data, KEEPER_OFF_ENV);
    let token = await adminToken(server.url);
    const inst = await createInstance(server, token, { name: 'resting', command: ['sleep', '1000'] });
    const res = await fetch(`${server.url}/api/v1/instances/${inst.id}/stop`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    await server.kill('SIGKILL');
    server = await spawnServer(data, KEEPER_OFF_ENV);
    token = await adminToken(server.url);
    const after = await waitForState(server, token, inst.id, 'stopped');
    expect(after.generation).toBe(1);
  });

  it('SIGTERM: children get their stop signal, the server waits for them', async () => {
    const data = await newDataDir();
    const marker = `graceful-${process.pid}-${Date.now()}`;
    server = await spawnServer(data, KEEPER_OFF_ENV);
    const token = await adminToken(server.url);
    // Takes a second to shut down after SIGTERM and leaves a file saying it did.
    const inst = await createInstance(server, token, {
      name: 'graceful',
      shell: `trap 'sleep 1; echo bye > $HOME/bye; exit 0' TERM; while true; do sleep 0.1; done # ${marker}`,
      stopGraceSeconds: 20,
    });
    await new Promise((r) => setTimeout(r, 300));
    const t = Date.now();
    const exit = await server.kill('SIGTERM');
    server = undefined;
    expect(exit.code).toBe(0);
    expect(Date.now() - t).toBeGreaterThan(900);
    expect(await readFile(path.join(data, 'instances', inst.id, 'data', 'bye'), 'utf8')).toBe('bye\n');
    expect(await waitGone(marker, 2000)).toEqual([]);
  });
});
