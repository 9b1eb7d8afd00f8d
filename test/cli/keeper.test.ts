/**
 * `corral keeper status|stop` on a real data dir: a server lets go of its instances at
 * SIGTERM (the keeper holds them), the CLI says what is kept and stops all of it. Needs
 * `npm run build` (spawnServer and runCli run bin/corral.js).
 */
import { rm } from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnServer, tempDir, type ChildServer } from '../helpers/server.js';
import { createInstance, processesMatching } from '../instances/helpers.js';
import { adminToken, keeperPid, waitGone } from '../drivers/keeper-helpers.js';
import { runCli } from './run-cli.js';

describe('corral keeper', { timeout: 120_000 }, () => {
  let data: string;
  let server: ChildServer | undefined;
  afterAll(async () => {
    await server?.kill('SIGKILL');
    try {
      process.kill(keeperPid(data), 'SIGKILL');
    } catch {
      /* stopped by the test */
    }
    await rm(data, { recursive: true, force: true });
  });

  it('says what outlives the server, refuses to stop what a server holds, and stops the rest', async () => {
    data = await tempDir('corral-cli-keeper-');
    const corral = (...args: string[]) => runCli(['keeper', ...args, '--data', data]);
    expect((await corral('status')).stdout).toContain('no keeper runs for');
    const badTimeout = await corral('stop', '--timeout', 'soon');
    expect([badTimeout.code, badTimeout.stderr]).toEqual([1, expect.stringMatching(/^bad_input: --timeout: "soon" is not a duration/)]);

    server = await spawnServer(data);
    const token = await adminToken(server.url);
    const marker = `kept-${process.pid}-${Date.now()}`;
    await createInstance(server, token, { name: 'kept', command: ['sh', '-c', `sleep 600; true # ${marker}`] });
    expect(await processesMatching(marker)).not.toEqual([]);

    // While the server holds it: shown as held, and not stopped without --force.
    const held = JSON.parse((await corral('status', '--json')).stdout);
    expect(held).toMatchObject({ running: true, pid: keeperPid(data) });
    expect(held.children.some((c: { held: boolean }) => c.held)).toBe(true);
    const refused = await corral('stop');
    expect([refused.code, refused.stderr]).toEqual([1, expect.stringMatching(/^server_running: a server holds \d+ of the \d+ kept processes/)]);

    // SIGTERM lets go: the workload runs on, kept by nobody's server.
    await server.kill('SIGTERM');
    server = undefined;
    expect(await processesMatching(marker)).not.toEqual([]);
    const status = await corral('status');
    expect(status.stdout).toMatch(new RegExp(`^keeper ${keeperPid(data)} \\(.*\\) keeps \\d+ process`));
    expect(status.stdout).toContain('KEY');

    const stopped = await corral('stop');
    expect([stopped.code, stopped.stdout]).toEqual([0, expect.stringMatching(/^stopped the keeper \d+ and the \d+ process/)]);
    expect(await waitGone(marker)).toEqual([]);
    expect((await corral('status')).stdout).toContain('no keeper runs for');
  });
});
