/** `corral serve` when it cannot listen: a sentence saying what to change, exit 1, no stack. */
import { rm } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ADMIN_PASSWORD, tempDir } from '../helpers/server.js';
import { runCli } from './run-cli.js';

vi.setConfig({ testTimeout: 120_000 });

let dir: string;
let busy: net.Server;
let port: number;
beforeAll(async () => {
  dir = await tempDir('corral-serve-busy-');
  // A listener of this test's own holds the port.
  busy = net.createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  port = (busy.address() as net.AddressInfo).port;
});
afterAll(async () => {
  await new Promise((r) => busy.close(r));
  await rm(dir, { recursive: true, force: true });
});

describe('corral serve', () => {
  it('on a busy port says so and names --port', async () => {
    const r = await runCli(['serve', '--host', '127.0.0.1', '--port', String(port), '--data', path.join(dir, 'data')], {
      env: { CORRAL_ADMIN_PASSWORD: ADMIN_PASSWORD },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`cannot_listen: port ${port} is in use: choose another with --port\n`);
  });
});
