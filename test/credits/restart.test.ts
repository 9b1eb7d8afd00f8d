/**
 * Balances survive a SIGKILL of the server: after a restart the balance is what the ledger
 * last recorded (at most one interval of usage lost, nothing credited back), the ledger
 * still sums to it, and metering resumes for the instance the supervisor starts again.
 * Then the CLI: `corral usage` and `corral user credits NAME +N|-N` against that server.
 */
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../cli/run-cli.js';
import { ADMIN_PASSWORD, api, createToken, KEEPER_OFF_ENV, login, spawnServer, stopKeeper, tempDir, type ChildServer } from '../helpers/server.js';
import { createInstance, waitForState } from '../instances/helpers.js';
import { consistentBalance, until } from './helpers.js';

// Without the keeper: the instance dies with the server and is started again, so nothing is
// charged for the outage. (With the keeper, the default, it runs on through the outage and
// that time is charged once it is re-adopted.)
const ENV = { ...KEEPER_OFF_ENV, CORRAL_CREDITS__INTERVAL_SECONDS: '0.5' };
let data: string;
let server: ChildServer | undefined;
let adminToken: string;
let token: string;

beforeAll(async () => {
  data = await tempDir('corral-credits-');
  server = await spawnServer(data, ENV);
  adminToken = await createToken(server.url, await login(server.url, 'admin', ADMIN_PASSWORD), 'admin');
  // Starting credits given at creation go through the ledger too.
  const created = await api(server, adminToken, 'POST', '/api/v1/users', { name: 'kim', password: 'kim-password', credits: 1000 });
  expect(created.body.credits).toBe(1000);
  token = await createToken(server.url, await login(server.url, 'kim', 'kim-password'), 'kim');
}, 60_000);

afterAll(async () => {
  await server?.kill('SIGTERM');
  await rm(data, { recursive: true, force: true });
});

describe('after a SIGKILL', () => {
  it('keeps the balance, and metering resumes', async () => {
    const inst = await createInstance(server!, token, { name: 'meter-me', command: ['sleep', '600'], metered: true });
    await waitForState(server!, token, inst.id, 'running');
    const before = await until(() => consistentBalance(server!, token), (b) => b <= 998, 15_000);

    const killed = await server!.kill('SIGKILL');
    expect(killed.signal).toBe('SIGKILL');
    server = await spawnServer(data, ENV);

    const after = await consistentBalance(server, token);
    // Nothing came back; at most a moment of the new run (restarted on start-up) was charged.
    expect(after).toBeLessThanOrEqual(before);
    expect(after).toBeGreaterThanOrEqual(before - 5);
    await waitForState(server, token, inst.id, 'running');
    const resumed = await until(() => consistentBalance(server!, token), (b) => b <= after - 2, 15_000);
    expect(resumed).toBeLessThan(after);
  }, 60_000);

  it('reports usage and takes grants through the CLI', async () => {
    const env = { CORRAL_URL: server!.url, CORRAL_TOKEN: token, XDG_CONFIG_HOME: data };
    const asAdmin = { ...env, CORRAL_TOKEN: adminToken };
    const text = await runCli(['usage', '--by', 'day'], { env });
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^kim: -?\d+ credits/);
    expect(text.stdout).toContain(new Date().toISOString().slice(0, 10));
    expect(text.stdout).toMatch(/quotas: instances 1\/100/);

    const taken = await runCli(['user', 'credits', 'kim', '-500', '--reason', 'correction', '--json'], { env: asAdmin });
    expect(taken.code).toBe(0);
    const { balance } = JSON.parse(taken.stdout);
    const report = JSON.parse((await runCli(['usage', '--user', 'kim', '--json', '--records', '50'], { env: asAdmin })).stdout);
    expect(report.user).toBe('kim');
    expect(report.balance).toBeLessThanOrEqual(balance);
    expect(report.records.find((r: any) => r.reason === 'correction')).toMatchObject({ kind: 'grant', credits: -500, balance });
    expect(report.groups.find((g: any) => g.name === 'meter-me').credits).toBeLessThan(0);

    const bad = await runCli(['user', 'credits', 'kim', '12x'], { env: asAdmin });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^bad_input:/);
    const badGrouping = await runCli(['usage', '--by', 'month'], { env });
    expect([badGrouping.code, badGrouping.stderr]).toEqual([1, expect.stringMatching(/^bad_input: --by must be instance, day, kind/)]);
  }, 60_000);
});

describe('with the keeper (the default)', () => {
  it('charges a re-adopted instance for the outage it ran through, once', async () => {
    const dir = await tempDir('corral-credits-kept-');
    const env = { CORRAL_CREDITS__INTERVAL_SECONDS: '0.5' };
    let kept: ChildServer | undefined = await spawnServer(dir, env);
    try {
      const admin = await createToken(kept.url, await login(kept.url, 'admin', ADMIN_PASSWORD), 'admin');
      await api(kept, admin, 'POST', '/api/v1/users', { name: 'lee', password: 'lee-password', credits: 1000 });
      const lee = await createToken(kept.url, await login(kept.url, 'lee', 'lee-password'), 'lee');
      const inst = await createInstance(kept, lee, { name: 'kept', command: ['sleep', '600'], metered: true });
      const before = await until(() => consistentBalance(kept!, lee), (b) => b <= 998, 15_000);

      expect((await kept.kill('SIGKILL')).signal).toBe('SIGKILL');
      const outageFrom = Date.now();
      await new Promise((r) => setTimeout(r, 8_000));
      kept = await spawnServer(dir, env);
      const back = await waitForState(kept, lee, inst.id, 'running');
      expect(back.generation).toBe(1); // re-adopted, not started again
      const outage = (Date.now() - outageFrom) / 1000;
      // 1 credit a second by default: the first charges after the re-adoption take the whole
      // outage at once (not ~1 a second from now on, which would need `outage` seconds), and
      // only once.
      const after = await until(() => consistentBalance(kept!, lee), (b) => b <= before - (outage - 1), 3_000);
      expect(after).toBeGreaterThan(before - outage - 10);
    } finally {
      await kept?.kill('SIGTERM');
      await stopKeeper(dir);
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
