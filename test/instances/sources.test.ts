/**
 * Procfile apps: from an uploaded archive (multipart) and from a source_url served on
 * 127.0.0.1 (allowed by sources.allowPrivate), and the refusals — SSRF to loopback and the
 * metadata address, path traversal, no Procfile, unknown process type — as instance state.
 * Then bombs (raw gzip, tar.gz, zip) against a running server, cancelling an unpack by
 * DELETE and by SIGTERM, and upload temp files that must not outlive their request.
 */
import { existsSync } from 'node:fs';
import http from 'node:http';
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, api, createToken, createUser, login, spawnServer, startTestServer, tempDir, type ChildServer, type TestServer } from '../helpers/server.js';
import { gzippedZeros, tarBytes, tarGzBomb, zipBytes } from '../sources/helpers/archives.js';
import { startFileServer, type FileServer } from '../sources/helpers/file-server.js';
import { createInstance, waitFor } from './helpers.js';

const app = tarBytes(
  [
    { path: 'app/', type: 'Directory' },
    { path: 'app/Procfile', body: 'web: env GREETING=hello sh run.sh\nworker: echo working; sleep 1000\n' },
    { path: 'app/run.sh', body: 'echo "$GREETING from $PWD on port $PORT"; exec sleep 1000\n' },
  ],
  { gzip: true },
);

function upload(server: TestServer, token: string, spec: unknown, archive: Buffer, fileName = 'app.tar.gz') {
  const form = new FormData();
  form.append('spec', JSON.stringify(spec));
  form.append('archive', new Blob([new Uint8Array(archive)]), fileName);
  return fetch(`${server.url}/api/v1/instances`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: form });
}

async function logsOf(server: TestServer, id: string): Promise<string> {
  const res = await fetch(`${server.url}/api/v1/instances/${id}/logs?tail=100`, { headers: { authorization: `Bearer ${server.adminToken}` } });
  return res.text();
}

const settled = (i: { state: string }) => ['running', 'failed'].includes(i.state);

describe('instances from sources', () => {
  let server: TestServer;
  let strict: TestServer;
  let files: FileServer;
  beforeAll(async () => {
    files = await startFileServer('127.0.0.1', {
      '/app.tar.gz': { headers: { 'content-type': 'application/gzip' }, body: app },
    });
    server = await startTestServer({ sources: { allowPrivate: ['127.0.0.0/8'] } });
    strict = await startTestServer();
  });
  afterAll(async () => {
    await Promise.all([server.stop(), strict.stop(), files.close()]);
  });

  it('runs the web process of an uploaded archive with the Procfile env, in the app dir', async () => {
    const res = await upload(server, server.adminToken, { name: 'uploaded', ports: [{ name: 'web' }] }, app);
    expect(res.status).toBe(201);
    const created = (await res.json()) as { id: string; spec: { source: unknown; process: string } };
    expect(created.spec.source).toEqual({ uploaded: 'app.tar.gz' });
    expect(created.spec.process).toBe('web');
    const running = await waitFor(server, server.adminToken, created.id, settled);
    expect(running.state).toBe('running');
    let text = '';
    for (let i = 0; i < 50 && !text.includes('hello'); i++) {
      text = await logsOf(server, created.id);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(text).toContain(`hello from /app/app on port ${running.ports[0].hostPort}`);
  });

  it('runs another process type from a source_url on 127.0.0.1 when the admin allows it', async () => {
    const created = await createInstance(server, server.adminToken, {
      name: 'fetched',
      source: { url: `${files.url}/app.tar.gz` },
      process: 'worker',
    });
    expect(created.state).toBe('pending');
    const running = await waitFor(server, server.adminToken, created.id, settled);
    expect(running.state).toBe('running');
    expect(files.requests).toContain('/app.tar.gz');
  });

  it('refuses a source_url on loopback or the metadata address without the allow-list', async () => {
    for (const [name, url] of [
      ['loopback', `${files.url}/app.tar.gz`],
      ['metadata', 'http://169.254.169.254/latest/meta-data/'],
    ]) {
      const created = await createInstance(strict, strict.adminToken, { name, source: { url } });
      const failed = await waitFor(strict, strict.adminToken, created.id, settled);
      expect(failed.state, name).toBe('failed');
      expect(failed.lastError, name).toMatch(/^source_refused: /);
    }
  });

  it('reports bad archives, a missing Procfile and an unknown process type', async () => {
    const cases: [string, Buffer, Record<string, unknown>, RegExp][] = [
      ['traversal', tarBytes([{ path: '../escape', body: 'x' }, { path: 'Procfile', body: 'web: true' }]), {}, /^bad_archive: /],
      ['absolute', tarBytes([{ path: '/etc/evil', body: 'x' }, { path: 'Procfile', body: 'web: true' }]), {}, /^bad_archive: /],
      ['linkout', tarBytes([{ path: 'Procfile', body: 'web: true' }, { path: 'out', type: 'SymbolicLink', linkpath: '/etc' }, { path: 'out/x', body: 'x' }]), {}, /^bad_archive: /],
      ['zipslip', zipBytes([{ name: '../../x', body: 'x' }]), {}, /^bad_archive: /],
      ['noprocfile', tarBytes([{ path: 'readme', body: 'x' }]), {}, /^no_procfile: /],
      ['badtype', tarBytes([{ path: 'Procfile', body: 'web: true' }]), { process: 'nope' }, /^unknown_process_type: /],
      ['notarchive', Buffer.from('just text'), {}, /^bad_archive: /],
    ];
    for (const [name, archive, extra, message] of cases) {
      const res = await upload(server, server.adminToken, { name, ...extra }, archive, 'x.tar');
      expect(res.status, name).toBe(201);
      const { id } = (await res.json()) as { id: string };
      const failed = await waitFor(server, server.adminToken, id, settled);
      expect(failed.state, name).toBe('failed');
      expect(failed.lastError, name).toMatch(message);
    }
  });

  it('refuses bad multipart requests', async () => {
    const noSpec = new FormData();
    noSpec.append('archive', new Blob([new Uint8Array(app)]), 'a.tgz');
    const r1 = await fetch(`${server.url}/api/v1/instances`, { method: 'POST', headers: { authorization: `Bearer ${server.adminToken}` }, body: noSpec });
    expect(r1.status).toBe(400);
    expect(((await r1.json()) as { error: { message: string } }).error.message).toMatch(/missing the "spec" field/);
    const r2 = await upload(server, server.adminToken, { name: 'Bad Name' }, app);
    expect(r2.status).toBe(400);
    expect(((await r2.json()) as { error: { message: string } }).error.message).toMatch(/spec\.name/);
    const r3 = await upload(server, server.adminToken, { name: 'both', source: { url: `${files.url}/app.tar.gz` } }, app);
    expect(r3.status).toBe(400);
    const extra = new FormData();
    extra.append('spec', JSON.stringify({ name: 'extra' }));
    extra.append('surprise', 'x');
    const r4 = await fetch(`${server.url}/api/v1/instances`, { method: 'POST', headers: { authorization: `Bearer ${server.adminToken}` }, body: extra });
    expect(r4.status).toBe(400);
    const badJson = new FormData();
    badJson.append('spec', '{"name":');
    const r5 = await fetch(`${server.url}/api/v1/instances`, { method: 'POST', headers: { authorization: `Bearer ${server.adminToken}` }, body: badJson });
    expect(r5.status).toBe(400);
    expect(((await r5.json()) as { error: { code: string } }).error.code).toBe('bad_json');
    const list = await api(server, server.adminToken, 'GET', '/api/v1/instances');
    expect(list.body.instances.map((i: { name: string }) => i.name)).not.toContain('both');
  });
});

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Upload files waiting in the server's tmp dir. */
async function uploadsLeft(server: TestServer): Promise<string[]> {
  return (await readdir(path.join(server.data, 'tmp')).catch(() => [] as string[])).filter((n) => n.startsWith('upload-'));
}

/** What an instance's dir holds besides its data and logs (an unpacked source, an archive copy). */
async function sourceLeftovers(server: TestServer, id: string): Promise<string[]> {
  const names = await readdir(path.join(server.data, 'instances', id)).catch(() => [] as string[]);
  return names.filter((n) => n === 'source' || n.startsWith('.source'));
}

/** A sparse-file entry node-tar skips unwritten: unpacking it is only inflating, no disk. */
const slowBomb = (size: number) => tarGzBomb(size, { type: 'SparseFile' });

describe('bombs against a running server', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ sources: { maxUnpackedBytes: 16 * MiB } });
  });
  afterAll(() => server.stop());

  it.each<[string, () => Buffer, RegExp]>([
    ['raw-gzip', () => gzippedZeros(GiB), /^bad_archive: not a valid tar archive: the gzip data begins with an empty block/],
    ['tgz-one-huge-file', () => tarGzBomb(GiB), /^bad_archive: archive entry "bomb": unpacked size exceeds the cap of 16777216 bytes \(sources\.maxUnpackedBytes\)/],
    [
      'tgz-many-files',
      () => tarBytes(Array.from({ length: 64 }, (_, i) => ({ path: `f${i}`, body: Buffer.alloc(512 * 1024) })), { gzip: true }),
      /^bad_archive: archive entry "f32": unpacked size exceeds the cap of 16777216 bytes \(sources\.maxUnpackedBytes\)/,
    ],
    [
      'zip',
      () => zipBytes(Array.from({ length: 8 }, (_, i) => ({ name: `z${i}`, body: Buffer.alloc(8 * MiB), deflate: true }))),
      /^bad_archive: archive entry "z2": unpacked size exceeds the cap of 16777216 bytes \(sources\.maxUnpackedBytes\)/,
    ],
  ])('%s: refused with the limit named, the server answering meanwhile, nothing left', async (name, make, reason) => {
    const res = await upload(server, server.adminToken, { name }, make(), 'bomb.bin');
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    let healthy = 0;
    let instance: { state: string; lastError: string | null } | undefined;
    for (let i = 0; i < 300 && !(instance && settled(instance)); i++) {
      const health = await fetch(`${server.url}/healthz`);
      expect(health.status).toBe(200);
      healthy++;
      instance = (await api(server, server.adminToken, 'GET', `/api/v1/instances/${id}`)).body;
      if (!settled(instance!)) await sleep(50);
    }
    expect(healthy).toBeGreaterThan(0);
    expect(instance!.state).toBe('failed');
    expect(instance!.lastError).toMatch(reason);
    expect(await sourceLeftovers(server, id)).toEqual([]);
  });
});

describe('cancelling an unpack', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ sources: { maxUnpackedBytes: 128 * GiB } });
  });
  afterAll(() => server.stop());

  it('DELETE mid-unpack answers, stops the writing and removes the files', async () => {
    const res = await upload(server, server.adminToken, { name: 'deleted-mid-unpack' }, tarGzBomb(4 * GiB));
    const { id } = (await res.json()) as { id: string };
    const dir = path.join(server.data, 'instances', id);
    const bomb = path.join(dir, 'source', 'bomb');
    for (let i = 0; i < 2000 && ((await stat(bomb).catch(() => undefined))?.size ?? 0) < MiB; i++) await sleep(5);
    expect((await stat(bomb)).size).toBeGreaterThanOrEqual(MiB);
    const deleted = await api(server, server.adminToken, 'DELETE', `/api/v1/instances/${id}`);
    expect(deleted.status).toBe(204);
    expect(existsSync(dir)).toBe(false);
    await sleep(300);
    expect(existsSync(dir)).toBe(false); // nothing kept writing
    expect((await api(server, server.adminToken, 'GET', `/api/v1/instances/${id}`)).status).toBe(404);
  });

  it('a slow unpack does not hold up another instance', async () => {
    const slow = await upload(server, server.adminToken, { name: 'slow' }, slowBomb(64 * GiB));
    const { id } = (await slow.json()) as { id: string };
    await waitFor(server, server.adminToken, id, (i) => i.state === 'unpacking');
    const quick = await upload(server, server.adminToken, { name: 'quick' }, tarBytes([{ path: 'readme', body: 'no Procfile' }]));
    const other = await waitFor(server, server.adminToken, ((await quick.json()) as { id: string }).id, settled);
    expect(other.lastError).toMatch(/^no_procfile: /);
    expect((await api(server, server.adminToken, 'GET', `/api/v1/instances/${id}`)).body.state).toBe('unpacking');
    expect((await api(server, server.adminToken, 'DELETE', `/api/v1/instances/${id}`)).status).toBe(204);
  });

  /** SIGTERM and how the server ended; 'still running' after a minute (a 64 GiB unpack takes several), then SIGKILL. */
  async function terminate(child: ChildServer) {
    const ended = await Promise.race([child.kill('SIGTERM'), sleep(60_000).then(() => 'still running' as const)]);
    if (ended === 'still running') await child.kill('SIGKILL');
    return ended;
  }

  it('SIGTERM mid-unpack: the server exits, and the instance unpacks again after a restart', async () => {
    const data = await tempDir();
    const env = { CORRAL_SOURCES__MAX_UNPACKED_BYTES: String(128 * GiB) };
    let child: ChildServer | undefined;
    try {
      child = await spawnServer(data, env);
      const token = await createToken(child.url, await login(child.url, 'admin', ADMIN_PASSWORD), 'sigterm');
      const res = await upload({ url: child.url } as TestServer, token, { name: 'unpacking' }, slowBomb(64 * GiB));
      const { id } = (await res.json()) as { id: string };
      await waitFor({ url: child.url }, token, id, (i) => i.state === 'unpacking');
      expect(await terminate(child)).toEqual({ code: 0, signal: null });
      expect(await readdir(path.join(data, 'instances', id))).not.toContain('source');

      child = await spawnServer(data, env);
      try {
        // Cancelled by the stop, not failed: the new server unpacks it again.
        const again = await waitFor({ url: child.url }, token, id, (i) => i.state === 'unpacking');
        expect(again.lastError).toBeNull();
      } finally {
        expect(await terminate(child)).toEqual({ code: 0, signal: null });
      }
    } finally {
      // A server that did not stop (the test failed) must not stay behind unpacking.
      if (child && child.child.exitCode === null && child.child.signalCode === null) await child.kill('SIGKILL');
      await rm(data, { recursive: true, force: true });
    }
  }, 180_000);
});

describe('upload temp files', () => {
  let server: TestServer;
  let token: string;
  beforeAll(async () => {
    server = await startTestServer({ quotas: { instances: 1 }, instances: { maxUploadBytes: MiB } });
    token = await createUser(server, 'uploader');
  });
  afterAll(() => server.stop());

  it('a refused upload leaves no temp file: quota, name taken, too large, bad spec', async () => {
    expect((await upload(server, token, { name: 'first' }, app)).status).toBe(201);
    const quota = await upload(server, token, { name: 'second' }, app);
    expect(quota.status).toBe(403);
    expect(((await quota.json()) as { error: { code: string } }).error.code).toBe('quota_exceeded');
    expect(await uploadsLeft(server)).toEqual([]);

    expect((await upload(server, server.adminToken, { name: 'taken' }, app)).status).toBe(201);
    expect((await upload(server, server.adminToken, { name: 'taken' }, app)).status).toBe(409);
    expect(await uploadsLeft(server)).toEqual([]);

    expect((await upload(server, server.adminToken, { name: 'big' }, Buffer.alloc(2 * MiB))).status).toBe(413);
    expect(await uploadsLeft(server)).toEqual([]);

    // The archive part first, then a spec that fails validation.
    const form = new FormData();
    form.append('archive', new Blob([new Uint8Array(app)]), 'app.tgz');
    form.append('spec', JSON.stringify({ name: 'Bad Name' }));
    const bad = await fetch(`${server.url}/api/v1/instances`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: form });
    expect(bad.status).toBe(400);
    expect(await uploadsLeft(server)).toEqual([]);
  });

  it('a client that goes away mid-upload leaves no temp file', async () => {
    const boundary = 'corral-test-boundary';
    const head =
      `--${boundary}\r\ncontent-disposition: form-data; name="spec"\r\n\r\n{"name":"aborted"}\r\n` +
      `--${boundary}\r\ncontent-disposition: form-data; name="archive"; filename="app.tgz"\r\ncontent-type: application/gzip\r\n\r\n`;
    const { port } = new URL(server.url);
    const req = http.request({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: '/api/v1/instances',
      headers: { authorization: `Bearer ${token}`, 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': 900 * 1024 },
    });
    req.on('error', () => {}); // the socket is destroyed below
    req.write(head);
    req.write(Buffer.alloc(256 * 1024, 1));
    for (let i = 0; i < 400 && (await uploadsLeft(server)).length === 0; i++) await sleep(10);
    expect(await uploadsLeft(server)).toHaveLength(1); // being written
    req.destroy();
    for (let i = 0; i < 400 && (await uploadsLeft(server)).length > 0; i++) await sleep(10);
    expect(await uploadsLeft(server)).toEqual([]);
  });

  it('stale upload files are swept at start, other temp files kept', async () => {
    const data = await tempDir();
    await mkdir(path.join(data, 'tmp'), { recursive: true });
    await writeFile(path.join(data, 'tmp', 'upload-0a1b2c3d'), 'left by a crash');
    await writeFile(path.join(data, 'tmp', 'release-keep'), 'not an upload');
    const fresh = await startTestServer({ data });
    try {
      expect(await readdir(path.join(data, 'tmp'))).toEqual(['release-keep']);
    } finally {
      await fresh.stop();
    }
  });
});
