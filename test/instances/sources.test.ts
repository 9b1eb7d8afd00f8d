/**
 * Procfile apps: from an uploaded archive (multipart) and from a source_url served on
 * 127.0.0.1 (allowed by sources.allowPrivate), and the refusals — SSRF to loopback and the
 * metadata address, path traversal, no Procfile, unknown process type — as instance state.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startTestServer, type TestServer } from '../helpers/server.js';
import { tarBytes, zipBytes } from '../sources/helpers/archives.js';
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
