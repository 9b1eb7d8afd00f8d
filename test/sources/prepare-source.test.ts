import { existsSync } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config.js';
import { prepareSource, type PrepareSourceOptions, type SourceState } from '../../src/core/sources/index.js';
import { tempDir } from '../helpers/server.js';
import { errors } from '../../src/core/errors.js';
import { tarBytes, tarGzBomb, zipBytes } from './helpers/archives.js';
import { startFileServer, type FileServer } from './helpers/file-server.js';

const APP = tarBytes(
  [
    { path: 'Procfile', body: '# app\nweb: env MODE=web ./serve \\\n  --port $PORT\nworker: ./work\n' },
    { path: 'serve', body: '#!/bin/sh\n', mode: 0o755 },
  ],
  { gzip: true },
);

// Loopback only for the test server; everything else keeps the default policy.
const config = loadConfig({ env: {}, flags: { sources: { allowPrivate: ['127.0.0.1/32'], maxUnpackedBytes: 1024 * 1024 } } }).sources;
const defaults = loadConfig({ env: {} }).sources;
const GiB = 1024 * 1024 * 1024;

let server: FileServer;
let work: string;
let into: string;
let states: SourceState[];

beforeAll(async () => {
  server = await startFileServer('127.0.0.1', {
    '/app.tgz': { headers: { 'content-type': 'application/x-gtar' }, body: APP },
  });
});
afterAll(() => server.close());
beforeEach(async () => {
  work = await tempDir('corral-prepare-');
  into = path.join(work, 'sources', 'instance-1');
  states = [];
});
afterEach(() => rm(work, { recursive: true, force: true }));

const prepare = (opts: Partial<PrepareSourceOptions>) =>
  prepareSource({ into, config, onState: (s) => states.push(s), ...opts } as PrepareSourceOptions);

/** Fails with `code`, leaving neither the directory nor a downloaded archive behind. */
async function expectFailure(opts: Partial<PrepareSourceOptions>, code: string, message?: RegExp) {
  await expect(prepare(opts)).rejects.toMatchObject({ code, ...(message && { message: expect.stringMatching(message) }) });
  expect(existsSync(into)).toBe(false);
  const parent = path.dirname(into);
  expect(existsSync(parent) ? await readdir(parent) : []).toEqual([]);
}

describe('prepareSource', () => {
  it('downloads, unpacks and reads the Procfile, reporting its states', async () => {
    const source = await prepare({ url: `${server.url}/app.tgz`, processType: 'web' });
    expect(states).toEqual(['downloading', 'unpacking']);
    expect(source).toMatchObject({ dir: into, appDir: into, format: 'tar.gz', entries: 2 });
    expect(source.procfile!.map((e) => e.type)).toEqual(['web', 'worker']);
    expect(source.process).toEqual({ type: 'web', env: { MODE: 'web' }, command: './serve   --port $PORT', line: 2 });
    expect(await readdir(path.dirname(into))).toEqual(['instance-1']); // the archive is gone
  });

  it('takes an uploaded archive as a Buffer, with no downloading state', async () => {
    const source = await prepare({ archive: zipBytes([{ name: 'Procfile', body: 'web: ./serve' }]), processType: 'web' });
    expect(states).toEqual(['unpacking']);
    expect(source.format).toBe('zip');
    expect(source.process!.command).toBe('./serve');
  });

  it('takes an uploaded archive as a stream', async () => {
    const source = await prepare({ archive: Readable.from([APP.subarray(0, 100), APP.subarray(100)]) });
    expect(source.procfile).toHaveLength(2);
    expect(source.process).toBeUndefined();
  });

  it('runs in the single top-level directory when the Procfile is there', async () => {
    const source = await prepare({ archive: tarBytes([{ path: 'app-1.0/Procfile', body: 'web: x' }, { path: 'app-1.0/x', body: '' }]), processType: 'web' });
    expect(source.appDir).toBe(path.join(into, 'app-1.0'));
  });

  it('follows a Procfile that is a link inside the source', async () => {
    const archive = tarBytes([
      { path: 'conf/Procfile.prod', body: 'web: prod' },
      { path: 'Procfile', type: 'SymbolicLink', linkpath: 'conf/Procfile.prod' },
    ]);
    expect((await prepare({ archive, processType: 'web' })).process!.command).toBe('prod');
  });

  it('without a process type, a source without a Procfile is fine', async () => {
    const source = await prepare({ archive: tarBytes([{ path: 'main.sh', body: 'echo hi' }]) });
    expect(source.procfile).toBeNull();
    expect(await readFile(path.join(into, 'main.sh'), 'utf8')).toBe('echo hi');
  });

  it('no Procfile', async () => {
    await expectFailure({ archive: tarBytes([{ path: 'main.sh', body: 'echo hi' }]), processType: 'web' }, 'no_procfile');
  });

  it('unknown process type', async () => {
    await expectFailure({ url: `${server.url}/app.tgz`, processType: 'clock' }, 'unknown_process_type', /"clock"; known: web, worker/);
  });

  it('a Procfile error names its line', async () => {
    await expectFailure({ archive: tarBytes([{ path: 'Procfile', body: 'web: a\nweb: b\n' }]), processType: 'web' }, 'procfile_invalid', /line 2/);
  });

  it('a Procfile that is a directory', async () => {
    await expectFailure({ archive: tarBytes([{ path: 'Procfile/', type: 'Directory' }]), processType: 'web' }, 'procfile_invalid', /not a regular file/);
  });

  it('a download failure', async () => {
    await expectFailure({ url: `${server.url}/missing.tgz`, processType: 'web' }, 'download_failed', /HTTP 404/);
    expect(states).toEqual(['downloading']);
  });

  it('the default policy refuses the loopback test server', async () => {
    const before = server.connections;
    await expectFailure({ url: `${server.url}/app.tgz`, config: defaults }, 'source_refused');
    expect(server.connections).toBe(before);
  });

  it('a bad archive', async () => {
    await expectFailure({ archive: tarBytes([{ path: '../escape', body: 'x' }]) }, 'bad_archive', /"\.\.\/escape"/);
    expect(existsSync(path.join(work, 'sources', 'escape'))).toBe(false);
  });

  it('an upload over the archive cap', async () => {
    const small = { ...config, maxDownloadBytes: 1000 };
    await expectFailure({ archive: Buffer.alloc(2000), config: small }, 'source_too_large');
    await expectFailure({ archive: Readable.from([Buffer.alloc(600), Buffer.alloc(600)]), config: small }, 'source_too_large');
  });

  it('an existing directory is not touched', async () => {
    await prepare({ archive: APP });
    const before = server.connections;
    await expect(prepare({ url: `${server.url}/app.tgz` })).rejects.toMatchObject({ code: 'conflict' });
    expect(server.connections).toBe(before); // refused before downloading
    expect(existsSync(path.join(into, 'Procfile'))).toBe(true);
  });

  it('an unpack past sources.unpackTimeoutSeconds is stopped, the limit named', async () => {
    // 6 GiB of a skipped entry type: nothing is written, the time goes into inflating it.
    const slow = { ...config, maxUnpackedBytes: 8 * GiB, unpackTimeoutSeconds: 1 };
    await expectFailure({ archive: tarGzBomb(6 * GiB, { type: 'SparseFile' }), config: slow }, 'bad_archive', /unpacking took longer than 1 s \(sources\.unpackTimeoutSeconds\)/);
  });

  it('a signal cancels an unpack in progress with its reason', async () => {
    const controller = new AbortController();
    const reason = errors.sourceCancelled('cancelled: test');
    const big = { ...config, maxUnpackedBytes: 8 * GiB };
    const failing = expectFailure({ archive: tarGzBomb(6 * GiB, { type: 'SparseFile' }), config: big, signal: controller.signal }, 'source_cancelled');
    while (!states.includes('unpacking')) await new Promise((r) => setTimeout(r, 10));
    controller.abort(reason);
    await failing;
  });

  it('a signal cancels a download in progress', async () => {
    server.routes.set('/hang.tgz', { headers: { 'content-type': 'application/gzip' }, hang: true });
    const controller = new AbortController();
    const failing = expectFailure({ url: `${server.url}/hang.tgz`, signal: controller.signal }, 'source_cancelled');
    while (!server.requests.includes('/hang.tgz')) await new Promise((r) => setTimeout(r, 10));
    controller.abort(errors.sourceCancelled('cancelled: test'));
    await failing;
  });

  it('url and archive are exclusive', async () => {
    await expect(prepare({})).rejects.toMatchObject({ code: 'bad_request' });
    await expect(prepare({ url: `${server.url}/app.tgz`, archive: APP })).rejects.toMatchObject({ code: 'bad_request' });
  });
});
