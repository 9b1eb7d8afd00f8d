/**
 * Nothing corral starts inherits its environment (the isolation issue, item 1): the server's
 * env holds secrets such as CORRAL_ADMIN_PASSWORD. The server here runs in this process, so
 * this process's env is the server's: two canaries go into it, then a job and an instance
 * dump every /proc/PID/environ they can read (their sandbox's pid 1, bwrap, included) and
 * their own env, and neither canary may appear.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectSandbox } from '../../src/drivers/process/detect.js';
import { api, startTestServer, type TestServer } from '../helpers/server.js';
import { createInstance, waitForState } from '../instances/helpers.js';
import { runJob } from '../jobs/helpers.js';

const CANARY = `canary-${process.pid}-${Date.now()}`;
const PASSWORD = `secret-admin-password-${process.pid}`;
// Before the server (and its spawn host, forked at the first child) exists.
process.env.CORRAL_TEST_CANARY = CANARY;
process.env.CORRAL_ADMIN_PASSWORD = PASSWORD;

/** Prints each readable /proc/PID/environ under a header, then its own env, then END. */
const DUMP = `for f in /proc/[0-9]*/environ; do echo "== $f"; tr '\\0' '\\n' < "$f" 2>/dev/null; echo; done; echo "== env"; env; echo END`;

const sandbox = await detectSandbox();

function expectNoServerEnv(out: string): void {
  expect(out).toContain('== /proc/1/environ');
  expect(out).toContain('== env');
  expect(out).not.toContain(CANARY);
  expect(out).not.toContain(PASSWORD);
  expect(out).not.toContain('CORRAL_TEST_CANARY');
  expect(out).not.toContain('CORRAL_ADMIN_PASSWORD');
}

describe.skipIf(!sandbox.available)('children get an explicit environment, never the server\'s', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ jobs: { poolSize: 1, warmSandboxes: 1 } });
  });
  afterAll(() => server.stop());

  it('a job reads no server variable in any /proc/*/environ (bwrap, its pid 1, included)', async () => {
    const res = await runJob(server, server.adminToken, { runtime: 'sh', entry: DUMP });
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('ok');
    expect(res.body.stdout).toContain('END');
    // The sandbox's pid 1 is bwrap (its environment is the base one) or, in a reused
    // sandbox, corral's init, whose environment a job cannot read at all.
    const pid1 = /== \/proc\/1\/environ\n((?:\w+=.*\n)*)/.exec(res.body.stdout)?.[1];
    expect(pid1 === '' || /(^|\n)HOME=\/nonexistent\n/.test(pid1 ?? 'missing')).toBe(true);
    expectNoServerEnv(res.body.stdout);
  });

  it('an instance reads no server variable in any /proc/*/environ', async () => {
    const inst = await createInstance(server, server.adminToken, { name: 'envdump', shell: DUMP, restart: 'never' });
    await waitForState(server, server.adminToken, inst.id, 'exited');
    const logs = await api(server, server.adminToken, 'GET', `/api/v1/instances/${inst.id}/logs`);
    expect(logs.body).toContain('END');
    expectNoServerEnv(logs.body as string);
  });
});
