/**
 * The keeper (on by default) is every instance's parent and holds their pipes: a tenant's
 * workload must not reach it — not its socket, its FIFOs or spools in DATA/keeper, nor the
 * keeper process (its /proc entry, environment or command line) — nor another instance's
 * pipes there. Attacked from inside a real sandboxed instance.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createUser, keeperPids, startTestServer, type TestServer } from '../helpers/server.js';
import { detectSandbox } from '../../src/drivers/process/detect.js';
import { createInstance, waitFor } from './helpers.js';

const sandbox = await detectSandbox();
let server: TestServer;
let alice: string;
let bob: string;
beforeAll(async () => {
  server = await startTestServer();
  alice = await createUser(server, 'alice');
  bob = await createUser(server, 'bob');
}, 60_000);
afterAll(async () => {
  await server?.stop();
});

describe.skipIf(!sandbox.available)('the keeper from inside an instance', () => {
  it('is out of reach: no socket, no FIFOs or spools, no keeper process, no other instance\'s pipes', async () => {
    // Bob's instance: its pipes are FIFOs in DATA/keeper/run/<key>/ on the host.
    const victim = await createInstance(server, bob, { name: 'victim', shell: 'while :; do echo bob-secret; sleep 0.2; done' });
    await waitFor(server, bob, victim.id, (i) => i.state === 'running');
    const [keeper] = keeperPids(server.data);
    expect(keeper).toBeGreaterThan(0);
    const runDirs = await readdir(path.join(server.data, 'keeper', 'run'));
    expect(runDirs.length).toBeGreaterThan(0);
    const fifo = path.join(server.data, 'keeper', 'run', runDirs[0]!, 'fd1');

    const probe = [
      `import os, socket`,
      `def tryit(name, fn):`,
      `    try:`,
      `        fn(); print(name, 'REACHED', flush=True)`,
      `    except Exception as e:`,
      `        print(name, 'refused', type(e).__name__, flush=True)`,
      `s = socket.socket(socket.AF_UNIX)`,
      `tryit('socket', lambda: s.connect(${JSON.stringify(path.join(server.data, 'keeper', 'keeper.sock'))}))`,
      `tryit('fifo', lambda: os.open(${JSON.stringify(fifo)}, os.O_RDONLY | os.O_NONBLOCK))`,
      `tryit('rundir', lambda: os.listdir(${JSON.stringify(path.join(server.data, 'keeper', 'run'))}))`,
      `tryit('environ', lambda: open('/proc/${keeper}/environ').read())`,
      `tryit('cmdline', lambda: open('/proc/${keeper}/cmdline').read() or None.x)`,
      `print('pids', sorted(int(p) for p in os.listdir('/proc') if p.isdigit()), flush=True)`,
      `print('done', flush=True)`,
    ].join('\n');
    const attacker = await createInstance(server, alice, { name: 'probe', command: ['python3', '-c', probe], restart: 'never' });
    const exited = await waitFor(server, alice, attacker.id, (i) => i.state === 'exited' || i.state === 'failed', 30_000);
    const out = (await api(server, alice, 'GET', `/api/v1/instances/${exited.id}/logs?tail=50&format=text`)).body as string;
    expect(out).toContain('done');
    for (const what of ['socket', 'fifo', 'rundir', 'environ', 'cmdline']) expect(out, what).toMatch(new RegExp(`^${what} refused`, 'm'));
    expect(out).not.toContain('REACHED');
    expect(out).not.toContain('bob-secret');
    // Its own pid namespace: only the sandbox's processes, never the keeper's pid.
    const pids = JSON.parse(/^pids (\[.*\])$/m.exec(out)![1]!) as number[];
    expect(pids).not.toContain(keeper);
    expect(pids.length).toBeLessThan(5);
  });
});
