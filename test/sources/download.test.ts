import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAddressPolicy } from '../../src/core/sources/address-policy.js';
import { download, type DownloadOptions, type Resolver } from '../../src/core/sources/download.js';
import { tempDir } from '../helpers/server.js';
import { tarBytes } from './helpers/archives.js';
import { startFileServer, type FileServer } from './helpers/file-server.js';

const ARCHIVE = tarBytes([{ path: 'Procfile', body: 'web: run' }], { gzip: true });
const ALLOW_TEST_SERVER = createAddressPolicy(['127.0.0.1/32']);

let server: FileServer; // 127.0.0.1, allowed by ALLOW_TEST_SERVER
let other: FileServer; // 127.0.0.2, refused by it
let work: string;
let to: string;

beforeAll(async () => {
  server = await startFileServer('127.0.0.1', {
    '/app.tar.gz': { headers: { 'content-type': 'application/gzip' }, body: ARCHIVE },
    '/app.octet': { headers: { 'content-type': 'application/octet-stream; charset=binary' }, body: ARCHIVE },
    '/app.untyped': { body: ARCHIVE },
    '/page.html': { headers: { 'content-type': 'text/html' }, body: '<html></html>' },
    '/big': { headers: { 'content-type': 'application/zip' }, body: Buffer.alloc(300 * 1024) },
    '/slow': { headers: { 'content-type': 'application/zip' }, hang: true },
    '/loop': { status: 302, headers: { location: '/loop' } },
    '/no-location': { status: 301 },
    '/to-app': { status: 302, headers: { location: '/app.tar.gz' } },
    '/to-app-close': { status: 302, headers: { location: '/app.tar.gz' }, close: true },
    '/to-metadata': { status: 302, headers: { location: 'http://169.254.169.254/latest/meta-data/' } },
    '/to-ftp': { status: 302, headers: { location: 'ftp://127.0.0.1/app.tar.gz' } },
  });
  other = await startFileServer('127.0.0.2', { '/app.tar.gz': { headers: { 'content-type': 'application/gzip' }, body: ARCHIVE } });
  server.routes.set('/to-other', { status: 307, headers: { location: `${other.url}/app.tar.gz` } });
});
afterAll(async () => {
  await server.close();
  await other.close();
});
beforeEach(async () => {
  work = await tempDir('corral-download-');
  to = path.join(work, 'archive');
});
afterEach(() => rm(work, { recursive: true, force: true }));

const get = (url: string, extra: Partial<DownloadOptions> = {}) =>
  download({ url, to, policy: ALLOW_TEST_SERVER, maxBytes: 100 * 1024, timeoutMs: 10_000, ...extra });

async function expectRefused(url: string, extra: Partial<DownloadOptions> = {}, message: RegExp = /refusing to download/) {
  const started = Date.now();
  await expect(get(url, extra)).rejects.toMatchObject({ code: 'source_refused', message: expect.stringMatching(message) });
  expect(existsSync(to)).toBe(false);
  // Refused up front, not after a connect attempt ran into a time-out.
  expect(Date.now() - started).toBeLessThan(5_000);
}

describe('downloads that work', () => {
  it.each(['/app.tar.gz', '/app.octet', '/app.untyped', '/to-app'])('%s', async (route) => {
    const result = await get(`${server.url}${route}`);
    const finalRoute = route === '/to-app' ? '/app.tar.gz' : route; // after the redirect
    expect(result).toMatchObject({ url: `${server.url}${finalRoute}`, bytes: ARCHIVE.length });
    expect(await readFile(to)).toEqual(ARCHIVE);
  });

  it('a host name goes through the resolver and connects to what it permits', async () => {
    const resolve: Resolver = async () => [
      { address: '10.0.0.1', family: 4 },
      { address: '127.0.0.1', family: 4 },
    ];
    const result = await get(`http://app.test:${server.port}/app.tar.gz`, { resolve });
    expect(result.bytes).toBe(ARCHIVE.length);
  });
});

describe('SSRF: refused addresses', () => {
  const NOTHING_ALLOWED = { policy: createAddressPolicy([]) };

  it('127.0.0.1, without connecting', async () => {
    const before = server.connections;
    await expectRefused(`${server.url}/app.tar.gz`, NOTHING_ALLOWED, /127\.0\.0\.1/);
    expect(server.connections).toBe(before);
  });

  it.each([
    'http://169.254.169.254/latest/meta-data/',
    'http://10.0.0.1/app.tar.gz',
    'http://192.168.1.1/app.tar.gz',
    'http://172.16.0.1/app.tar.gz',
    'http://100.64.0.1/app.tar.gz',
    'http://0.0.0.0/app.tar.gz',
    'http://[::1]/app.tar.gz',
    'http://[::ffff:127.0.0.1]/app.tar.gz',
    'http://[fe80::1]/app.tar.gz',
    'http://[fd00::1]/app.tar.gz',
    'http://2130706433/app.tar.gz', // 127.0.0.1 written as a number
  ])('%s', async (url) => {
    await expectRefused(url, NOTHING_ALLOWED);
  });

  it('localhost, a name resolving to 127.0.0.1, without connecting', async () => {
    const before = server.connections;
    await expectRefused(`http://localhost:${server.port}/app.tar.gz`, NOTHING_ALLOWED, /localhost \((127\.0\.0\.1|::1)\)/);
    expect(server.connections).toBe(before);
  });

  it('a name resolving only to refused addresses', async () => {
    const resolve: Resolver = async () => [{ address: '10.1.2.3', family: 4 }];
    await expectRefused(`http://intranet.test:${server.port}/`, { resolve }, /intranet\.test \(10\.1\.2\.3\)/);
  });

  it('DNS rebinding: a name that resolves to an allowed address first and a refused one next', async () => {
    const answers = ['127.0.0.1', '169.254.169.254'];
    const resolve: Resolver = async () => [{ address: answers.shift() ?? '169.254.169.254', family: 4 }];
    // The redirect closes the connection, so the next hop connects (and resolves) again.
    await expectRefused(`http://rebind.test:${server.port}/to-app-close`, { resolve }, /169\.254\.169\.254/);
    expect(answers).toEqual([]);
  });

  it('a redirect from the allowed server to 169.254.169.254', async () => {
    await expectRefused(`${server.url}/to-metadata`);
  });

  it('a redirect to another loopback address not in the allow-list, without connecting to it', async () => {
    await expectRefused(`${server.url}/to-other`, {}, /127\.0\.0\.2/);
    expect(other.connections).toBe(0);
    // It does serve: the same download is fine once 127.0.0.2 is allowed.
    const result = await get(`${server.url}/to-other`, { policy: createAddressPolicy(['127.0.0.1/32', '127.0.0.2']) });
    expect(result.url).toBe(`${other.url}/app.tar.gz`);
  });

  it.each(['ftp://127.0.0.1/x.tar', 'file:///etc/passwd', 'not a url'])('%s is not http(s)', async (url) => {
    await expect(get(url)).rejects.toMatchObject({ code: 'source_refused' });
  });

  it('a redirect to ftp', async () => {
    await expectRefused(`${server.url}/to-ftp`, {}, /only http and https/);
  });
});

describe('failed downloads', () => {
  it('404', async () => {
    await expect(get(`${server.url}/missing.tar.gz`)).rejects.toMatchObject({ code: 'download_failed', message: expect.stringMatching(/answered HTTP 404, expected 200/) });
    expect(existsSync(to)).toBe(false);
  });

  it('an HTML page instead of an archive', async () => {
    await expect(get(`${server.url}/page.html`)).rejects.toMatchObject({ code: 'download_failed', message: expect.stringMatching(/content type text\/html/) });
  });

  it('larger than the cap: cut off, file removed', async () => {
    await expect(get(`${server.url}/big`)).rejects.toMatchObject({ code: 'source_too_large', message: expect.stringMatching(/larger than 102400 bytes/) });
    expect(existsSync(to)).toBe(false);
  });

  it('larger than the cap without a Content-Length', async () => {
    server.routes.set('/big-chunked', { headers: { 'content-type': 'application/zip', 'transfer-encoding': 'chunked' }, body: Buffer.alloc(300 * 1024) });
    await expect(get(`${server.url}/big-chunked`)).rejects.toMatchObject({ code: 'source_too_large' });
    expect(existsSync(to)).toBe(false);
  });

  it('a server that never sends the body times out', async () => {
    await expect(get(`${server.url}/slow`, { timeoutMs: 500 })).rejects.toMatchObject({ code: 'download_failed', message: expect.stringMatching(/timed out after 0.5 s/) });
    expect(existsSync(to)).toBe(false);
  });

  it('an existing target file is neither overwritten nor removed', async () => {
    await writeFile(to, 'mine');
    await expect(get(`${server.url}/app.tar.gz`)).rejects.toMatchObject({ code: 'download_failed', message: expect.stringMatching(/EEXIST/) });
    expect(await readFile(to, 'utf8')).toBe('mine');
  });

  it('a redirect loop stops', async () => {
    await expect(get(`${server.url}/loop`)).rejects.toMatchObject({ code: 'download_failed', message: expect.stringMatching(/too many redirects/) });
  });

  it('a redirect without a Location', async () => {
    await expect(get(`${server.url}/no-location`)).rejects.toMatchObject({ code: 'download_failed', message: expect.stringMatching(/without a Location/) });
  });

  it('nothing listening', async () => {
    const gone = await startFileServer();
    await gone.close();
    await expect(get(`${gone.url}/app.tar.gz`)).rejects.toMatchObject({ code: 'download_failed', message: expect.stringMatching(/ECONNREFUSED/) });
  });

  it('a name that does not resolve', async () => {
    const resolve: Resolver = async () => {
      throw Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' });
    };
    await expect(get('http://nowhere.test/app.tar.gz', { resolve })).rejects.toMatchObject({ code: 'download_failed', message: expect.stringMatching(/cannot resolve nowhere\.test: ENOTFOUND/) });
  });

  it('cancelled by the caller', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    await expect(get(`${server.url}/slow`, { signal: controller.signal })).rejects.toMatchObject({ code: 'download_failed', message: expect.stringMatching(/cancelled/) });
  });
});

describe('https', () => {
  let secure: FileServer;
  let cert: string;

  beforeAll(async () => {
    const dir = await tempDir('corral-download-tls-');
    const key = path.join(dir, 'key.pem');
    const certFile = path.join(dir, 'cert.pem');
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', certFile,
      '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
    ], { stdio: 'ignore' });
    cert = await readFile(certFile, 'utf8');
    secure = await startFileServer('127.0.0.1', { '/app.tar.gz': { headers: { 'content-type': 'application/gzip' }, body: ARCHIVE } }, { key: await readFile(key, 'utf8'), cert });
    await rm(dir, { recursive: true });
  });
  afterAll(() => secure.close());

  it('downloads over TLS through the guarded connector', async () => {
    const result = await get(`${secure.url}/app.tar.gz`, { ca: cert });
    expect(result.bytes).toBe(ARCHIVE.length);
  });

  it('an untrusted certificate fails the download', async () => {
    await expect(get(`${secure.url}/app.tar.gz`)).rejects.toMatchObject({ code: 'download_failed', message: expect.stringMatching(/certificate/i) });
  });

  it('a refused address is refused before the TLS handshake', async () => {
    const before = secure.connections;
    await expectRefused(`${secure.url}/app.tar.gz`, { policy: createAddressPolicy([]), ca: cert });
    expect(secure.connections).toBe(before);
  });
});
