/**
 * No sandbox, no workloads (the isolation issue, item 4): with bwrap missing the process
 * driver refuses instances and jobs with 503 driver_unavailable naming both fixes, instead of
 * running them unsandboxed as the server's user (where one printed the signing key). Only an
 * explicit drivers.process.sandbox: none runs them, still with an explicit environment, and
 * doctor says so. bwrap is "missing" by pointing drivers.process.bwrap at a path that is not.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDoctor } from '../../src/core/doctor.js';
import { detectSandbox } from '../../src/drivers/process/detect.js';
import { rm } from 'node:fs/promises';
import { loadConfig } from '../../src/core/config.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { api, createUser, spawnServer, startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import { createInstance, waitForState } from '../instances/helpers.js';
import { processesWith, runJob } from '../jobs/helpers.js';

const MISSING_BWRAP = '/nonexistent/corral-test/bwrap';
const CANARY = `canary-${process.pid}-fail-closed`;
process.env.SERVER_SECRET_CANARY = CANARY;

const sandbox = await detectSandbox();

function expectRefusal(res: { status: number; body: any }): void {
  expect(res.status).toBe(503);
  expect(res.body.error.code).toBe('driver_unavailable');
  expect(res.body.error.message).toContain('apt-get install bubblewrap');
  expect(res.body.error.message).toContain('drivers.process.sandbox: none');
}

describe('without bwrap the process driver refuses work', () => {
  let server: RunningServer;
  let data: string;
  let alice: string;
  beforeAll(async () => {
    const before = await startTestServer();
    data = before.data;
    alice = await createUser(before, 'alice');
    // An instance stored while the sandbox worked, stopped: its start is refused later.
    if (sandbox.available) {
      await createInstance(before, alice, { name: 'stored', shell: 'sleep 60', restart: 'never' });
      expect((await api(before, alice, 'POST', '/api/v1/instances/stored/stop')).status).toBe(200);
    }
    await before.stop({ keepData: true });
    server = await startServer(
      loadConfig({ env: {}, flags: { host: '127.0.0.1', port: 0, logLevel: 'silent', data, drivers: { process: { bwrap: MISSING_BWRAP } } } }),
    );
  });
  afterAll(async () => {
    await server.close();
    await rm(data, { recursive: true, force: true });
  });

  it('refuses to create an instance: 503 driver_unavailable with the fix', async () => {
    expectRefusal(await api(server, alice, 'POST', '/api/v1/instances', { name: 'refused', shell: 'echo hi' }));
    // Nothing was stored.
    expect((await api(server, alice, 'GET', '/api/v1/instances/refused')).status).toBe(404);
  });

  it.skipIf(!sandbox.available)('refuses to start a stored instance', async () => {
    expectRefusal(await api(server, alice, 'POST', '/api/v1/instances/stored/start'));
    const shown = await api(server, alice, 'GET', '/api/v1/instances/stored');
    expect(shown.body.desiredState).toBe('stopped');
  });

  it('refuses a job: 503 driver_unavailable, not a 200 "killed" result', async () => {
    expectRefusal(await api(server, alice, 'POST', '/api/v1/jobs', { runtime: 'sh', entry: 'echo hi' }));
    expectRefusal(await api(server, alice, 'POST', '/api/v1/jobs?wait=false', { runtime: 'sh', entry: 'echo hi' }));
  });

  it('doctor reports bwrap missing and what the driver does without it', async () => {
    const report = await runDoctor({ data, process: { sandbox: 'bwrap', bwrap: MISSING_BWRAP } });
    const check = report.checks.find((c) => c.name === 'bubblewrap')!;
    expect(check.status).toBe('missing');
    expect(check.without).toMatch(/refuses instances and jobs/);
  });
});

describe('drivers.process.sandbox: none runs work unsandboxed, on purpose', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ drivers: { process: { sandbox: 'none', bwrap: MISSING_BWRAP } }, jobs: { poolSize: 1, warmSandboxes: 1 } });
  });
  afterAll(() => server.stop());

  it('runs an instance', async () => {
    const inst = await createInstance(server, server.adminToken, { name: 'bare', shell: 'echo "running bare"', restart: 'never' });
    await waitForState(server, server.adminToken, inst.id, 'exited');
    const logs = await api(server, server.adminToken, 'GET', `/api/v1/instances/${inst.id}/logs`);
    expect(logs.body).toContain('running bare');
  });

  it("runs jobs, each with an explicit environment (none of the server's)", async () => {
    for (let i = 0; i < 2; i++) {
      const res = await runJob(server, server.adminToken, { runtime: 'sh', entry: 'echo "cwd=$PWD"; env' });
      expect(res.status).toBe(200);
      expect(res.body.status).toBe('ok');
      expect(res.body.stdout).not.toContain(CANARY);
      const names = (res.body.stdout as string).trim().split('\n').slice(1).map((l) => l.split('=')[0]).filter((n) => !['PWD', 'SHLVL', '_', 'OLDPWD'].includes(n!));
      expect(names.sort()).toEqual(['HOME', 'LANG', 'PATH', 'TMPDIR']);
      // Its own work dir, as in a sandbox.
      expect(res.body.stdout).toMatch(/^cwd=\/.+\/work\n/);
    }
  });

  it('ends an unsandboxed job\'s background processes with it', async () => {
    const marker = `7${process.pid}3`;
    const res = await runJob(server, server.adminToken, { runtime: 'sh', entry: `(sleep ${marker} &) ; echo started`, timeoutSeconds: 5 });
    // Its shell's end ends them: the job does not wait for them until its timeout.
    expect(res.body.status).toBe('ok');
    expect(res.body.stdout).toBe('started\n');
    await new Promise((r) => setTimeout(r, 200));
    expect(await processesWith(`sleep ${marker}`)).toEqual([]);
  });

  it('every start logs it at warn level (a server child process: needs `npm run build`)', async () => {
    const data = await tempDir();
    try {
      for (let start = 0; start < 2; start++) {
        const child = await spawnServer(data, { CORRAL_DRIVERS__PROCESS__SANDBOX: 'none' });
        await child.kill('SIGKILL');
        const warnings = child.output().split('\n').filter((l) => l.includes('"level":40'));
        expect(warnings.join('\n')).toMatch(/drivers\.process\.sandbox is none: instances and jobs run UNSANDBOXED/);
      }
    } finally {
      await rm(data, { recursive: true, force: true });
    }
  });

  it('doctor flags it loudly', async () => {
    const report = await runDoctor({ data: server.data, process: { sandbox: 'none' } });
    const check = report.checks.find((c) => c.name === 'bubblewrap')!;
    expect(check.status).toBe('missing');
    expect(check.detail).toMatch(/^UNSAFE: .*UNSANDBOXED/);
  });
});
