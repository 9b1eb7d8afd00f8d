/**
 * A full data disk: requests that write answer 507 `disk_full` (not a bare 500), /readyz answers
 * 503 naming the reason while nothing can be written, and both recover once space is freed. The
 * data directory is a small tmpfs this test mounts (as root) and fills.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, open, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { api, createUser, startTestServer, type TestServer } from '../helpers/server.js';
import { procfileApp } from '../compat/helpers.js';

/** Mounts a tmpfs of `size` at a new directory, or says why it cannot. */
async function mountTmpfs(size: string): Promise<{ dir: string } | { skip: string }> {
  if (process.getuid?.() !== 0) return { skip: 'mounting a tmpfs needs root' };
  const dir = await mkdtemp(path.join(tmpdir(), 'corral-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], { stdio: 'pipe' });
    return { dir };
  } catch (e) {
    await rmdir(dir);
    return { skip: `mount refused: ${String((e as { stderr?: Buffer }).stderr ?? e).trim()}` };
  }
}

/** Writes zeros to `file` until the disk is full. */
async function fill(file: string): Promise<void> {
  const chunk = Buffer.alloc(1024 * 1024);
  const fh = await open(file, 'w');
  try {
    for (;;) {
      try {
        await fh.write(chunk);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
        // The last partial chunk: fill the remainder byte-wise in small writes.
        for (let n = 4096; n >= 1; n = Math.floor(n / 2)) await fh.write(Buffer.alloc(n)).catch(() => undefined);
        return;
      }
    }
  } finally {
    await fh.close();
  }
}

const mounted = await mountTmpfs('64m');
const skip = 'skip' in mounted ? mounted.skip : undefined;
if (skip) console.warn(`disk-full test skipped: ${skip}`);

describe.skipIf(!!skip)('a full data disk', () => {
  const data = 'dir' in mounted ? mounted.dir : '';
  const filler = path.join(data, 'filler');
  let server: TestServer;
  let alice: string;

  beforeAll(async () => {
    server = await startTestServer({ data });
    alice = await createUser(server, 'alice');
  }, 60_000);
  afterAll(async () => {
    await server?.stop({ keepData: true });
    execFileSync('umount', [data]);
    await rmdir(data);
  });

  const upload = async (name: string) => {
    const form = new FormData();
    form.append('spec', JSON.stringify({ name, process: 'web' }));
    form.append('archive', new Blob([new Uint8Array(procfileApp({ Procfile: 'web: sleep 600\n', 'pad.bin': 'x'.repeat(256 * 1024) }))]), 'app.tar.gz');
    const res = await fetch(`${server.url}/api/v1/instances`, { method: 'POST', headers: { authorization: `Bearer ${alice}` }, body: form });
    return { status: res.status, body: (await res.json()) as any };
  };

  it('answers 507 disk_full to writes and fails /readyz with 503 until space is freed', async () => {
    expect((await api(server, undefined, 'GET', '/readyz')).status).toBe(200);
    await fill(filler);

    const ready = await vi.waitFor(
      async () => {
        const r = await api(server, undefined, 'GET', '/readyz');
        expect(r.status).toBe(503);
        return r;
      },
      { timeout: 10_000, interval: 200 },
    );
    expect(ready.body.error).toMatchObject({ code: 'not_ready', message: expect.stringContaining('the disk is full') });

    const uploaded = await upload('full');
    expect(uploaded.status).toBe(507);
    expect(uploaded.body.error).toMatchObject({ code: 'disk_full', message: expect.stringContaining('disk is full') });
    // A database write too: SQLite's write-ahead log has to grow (a fresh server has not yet
    // checkpointed), and it cannot.
    const user = await api(server, server.adminToken, 'POST', '/api/v1/users', { name: 'bob', password: 'bob-password-long' });
    expect([user.status, user.body.error?.code]).toEqual([507, 'disk_full']);

    await rm(filler);
    await vi.waitFor(async () => expect((await api(server, undefined, 'GET', '/readyz')).status).toBe(200), { timeout: 10_000, interval: 200 });
    const again = await upload('after');
    expect(again.status, JSON.stringify(again.body)).toBe(201);
    expect((await api(server, server.adminToken, 'POST', '/api/v1/users', { name: 'bob', password: 'bob-password-long' })).status).toBe(201);
  }, 60_000);
});
