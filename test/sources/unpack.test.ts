import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { errors } from '../../src/core/errors.js';
import { unpackArchive, type UnpackLimits } from '../../src/core/sources/unpack.js';
import { tempDir } from '../helpers/server.js';
import { gzippedZeros, tarBytes, tarGzBomb, zipBytes, type TarEntry, type ZipEntry } from './helpers/archives.js';

const LIMITS: UnpackLimits = { maxUnpackedBytes: 1024 * 1024, maxFiles: 50 };
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

let work: string;
let into: string;
beforeEach(async () => {
  work = await tempDir('corral-unpack-');
  into = path.join(work, 'app');
});
afterEach(() => rm(work, { recursive: true, force: true }));

async function unpack(bytes: Buffer, limits = LIMITS, signal?: AbortSignal) {
  const file = path.join(work, 'archive');
  await writeFile(file, bytes);
  return unpackArchive(file, into, limits, signal);
}

/** Unpacking fails with bad_archive, the message matching `reason`, and leaves nothing behind. */
async function expectRefused(bytes: Buffer, reason: RegExp, limits = LIMITS) {
  await expect(unpack(bytes, limits)).rejects.toMatchObject({ code: 'bad_archive', message: expect.stringMatching(reason) });
  expect(existsSync(into)).toBe(false);
}

const modeOf = async (rel: string) => (await stat(path.join(into, rel))).mode & 0o7777;

describe('good archives unpack with their modes', () => {
  const tarEntries: TarEntry[] = [
    { path: 'Procfile', body: 'web: ./run\n' },
    { path: 'bin/', type: 'Directory', mode: 0o750 },
    { path: 'bin/run', body: '#!/bin/sh\necho hi\n', mode: 0o755 },
    { path: 'bin/suid', body: 'x', mode: 0o4755 },
    { path: 'lib/deep/data.txt', body: 'data', mode: 0o600 },
    { path: 'current', type: 'SymbolicLink', linkpath: 'lib/deep' },
    { path: 'lib/deep/up', type: 'SymbolicLink', linkpath: '../../bin/run' },
    { path: 'copy', type: 'Link', linkpath: 'bin/run' },
  ];

  async function checkTree() {
    expect(await readFile(path.join(into, 'Procfile'), 'utf8')).toBe('web: ./run\n');
    expect(await modeOf('bin')).toBe(0o750);
    expect(await modeOf('bin/run')).toBe(0o755);
    expect(await modeOf('bin/suid')).toBe(0o755); // setuid dropped
    expect(await modeOf('lib/deep/data.txt')).toBe(0o600);
    expect(await readlink(path.join(into, 'current'))).toBe('lib/deep');
    expect(await readFile(path.join(into, 'current/data.txt'), 'utf8')).toBe('data');
    expect(await readFile(path.join(into, 'lib/deep/up'), 'utf8')).toContain('echo hi');
  }

  it('tar', async () => {
    const result = await unpack(tarBytes(tarEntries));
    expect(result.format).toBe('tar');
    await checkTree();
    expect((await stat(path.join(into, 'copy'))).ino).toBe((await stat(path.join(into, 'bin/run'))).ino);
    expect(result.entries).toBe(10); // 8 entries + the implied lib/ and lib/deep/
    expect(result.bytes).toBe('web: ./run\n'.length + '#!/bin/sh\necho hi\n'.length + 1 + 4);
  });

  it('tar.gz', async () => {
    const result = await unpack(tarBytes(tarEntries, { gzip: true }));
    expect(result.format).toBe('tar.gz');
    await checkTree();
  });

  it('zip, stored and deflated', async () => {
    const result = await unpack(
      zipBytes([
        { name: 'Procfile', body: 'web: ./run\n', deflate: true },
        { name: 'bin/', mode: 0o040750 },
        { name: 'bin/run', body: '#!/bin/sh\necho hi\n', mode: 0o100755, deflate: true },
        { name: 'bin/suid', body: 'x', mode: 0o104755 },
        { name: 'lib/deep/data.txt', body: 'data', mode: 0o100600 },
        { name: 'current', body: 'lib/deep', mode: 0o120777 },
        { name: 'lib/deep/up', body: '../../bin/run', mode: 0o120777 },
      ]),
    );
    expect(result.format).toBe('zip');
    await checkTree();
  });

  it('an old-style directory entry (a file named "dir/") is a directory (node-tar\'s Header)', async () => {
    await unpack(tarBytes([{ path: 'old/', type: 'OldFile', mode: 0o755 }, { path: 'old/f', body: 'x' }]));
    expect((await stat(path.join(into, 'old'))).isDirectory()).toBe(true);
    expect(await readFile(path.join(into, 'old/f'), 'utf8')).toBe('x');
  });

  it('a single top-level directory and "./" prefixes are kept as they are', async () => {
    await unpack(tarBytes([{ path: './', type: 'Directory' }, { path: './app-1.0/Procfile', body: 'x: y' }]));
    expect(await readFile(path.join(into, 'app-1.0/Procfile'), 'utf8')).toBe('x: y');
  });
});

describe('path traversal and absolute paths', () => {
  it.each<[string, Buffer]>([
    ['tar ../x', tarBytes([{ path: '../x', body: 'evil' }])],
    ['tar a/../../x', tarBytes([{ path: 'a/../../x', body: 'evil' }])],
    ['tar.gz ../x', tarBytes([{ path: 'ok', body: 'fine' }, { path: '../x', body: 'evil' }], { gzip: true })],
    ['zip ../x', zipBytes([{ name: '../x', body: 'evil' }])],
    ['zip a/../../x', zipBytes([{ name: 'a/../../x', body: 'evil' }])],
  ])('%s is refused', async (_, bytes) => {
    await expectRefused(bytes, /"\.\." component/);
    expect(existsSync(path.join(work, 'x'))).toBe(false);
  });

  it.each<[string, Buffer]>([
    ['tar', tarBytes([{ path: '/etc/x', body: 'evil' }])],
    ['zip', zipBytes([{ name: '/etc/x', body: 'evil' }])],
  ])('%s /etc/x is refused', async (_, bytes) => {
    await expectRefused(bytes, /"\/etc\/x": absolute path/);
  });
});

describe('links', () => {
  it('a symlink to an absolute path is refused', async () => {
    await expectRefused(tarBytes([{ path: 'link', type: 'SymbolicLink', linkpath: '/etc' }]), /"link": symbolic link to the absolute path "\/etc"/);
    await expectRefused(zipBytes([{ name: 'link', body: '/etc', mode: 0o120777 }]), /absolute path/);
  });

  it('a symlink climbing out with .. is refused', async () => {
    await expectRefused(tarBytes([{ path: 'a/link', type: 'SymbolicLink', linkpath: '../../etc' }]), /points outside the archive/);
  });

  it('writing through a symlink is refused, even one pointing inside', async () => {
    // The classic: link -> /etc, then link/passwd. Also with an inside target, since the
    // target could be swapped; nothing is ever written through a link.
    await expectRefused(
      tarBytes([
        { path: 'inside/', type: 'Directory' },
        { path: 'link', type: 'SymbolicLink', linkpath: 'inside' },
        { path: 'link/passwd', body: 'evil' },
      ]),
      /"link\/passwd": path goes through the symbolic link "link"/,
    );
  });

  it('link/passwd after link -> /etc never reaches /etc', async () => {
    await expectRefused(
      tarBytes([
        { path: 'link', type: 'SymbolicLink', linkpath: '/etc' },
        { path: 'link/passwd', body: 'evil' },
      ]),
      /"link"/,
    );
  });

  it('a chain of links that each look inside but lead outside is refused', async () => {
    // a/up -> .. is the root; escape -> a/up/.. is lexically "a" but really the root's parent.
    await expectRefused(
      tarBytes([
        { path: 'a/up', type: 'SymbolicLink', linkpath: '..' },
        { path: 'escape', type: 'SymbolicLink', linkpath: 'a/up/..' },
      ]),
      /"escape": symbolic link to "a\/up\/\.\." resolves outside/,
    );
  });

  it('a loop of links is refused', async () => {
    await expectRefused(
      tarBytes([
        { path: 'x', type: 'SymbolicLink', linkpath: 'y' },
        { path: 'y', type: 'SymbolicLink', linkpath: 'x' },
      ]),
      /loop/,
    );
  });

  it.each([['../../etc/passwd'], ['/etc/passwd'], ['missing']])('a hard link to %s is refused', async (target) => {
    await expectRefused(tarBytes([{ path: 'h', type: 'Link', linkpath: target }]), /"h": hard link to/);
  });

  it('a hard link to a symlink is refused', async () => {
    await expectRefused(
      tarBytes([
        { path: 's', type: 'SymbolicLink', linkpath: 'x' },
        { path: 'h', type: 'Link', linkpath: 's' },
      ]),
      /not a file earlier in the archive/,
    );
  });
});

describe('special files', () => {
  it.each<[string, Buffer]>([
    ['tar character device', tarBytes([{ path: 'dev', type: 'CharacterDevice' }])],
    ['tar block device', tarBytes([{ path: 'dev', type: 'BlockDevice' }])],
    ['tar FIFO', tarBytes([{ path: 'dev', type: 'FIFO' }])],
    ['zip character device', zipBytes([{ name: 'dev', mode: 0o020644 }])],
    ['zip FIFO', zipBytes([{ name: 'dev', mode: 0o010644 }])],
  ])('%s is refused', async (_, bytes) => {
    await expectRefused(bytes, /"dev": .*(device|FIFO)/);
  });

  it('other tar entry types are refused', async () => {
    await expectRefused(tarBytes([{ path: 'dump', type: 'GNUDumpDir' }]), /"dump": unsupported entry type GNUDumpDir/);
  });

  it('entry types node-tar does not know are skipped, never written', async () => {
    const result = await unpack(tarBytes([{ path: 'sparse', type: 'SparseFile', body: 'x' }, { path: 'ok', body: 'y' }]));
    expect(result.entries).toBe(1);
    expect(existsSync(path.join(into, 'sparse'))).toBe(false);
  });

  it('a duplicate entry is refused', async () => {
    await expectRefused(tarBytes([{ path: 'a', body: '1' }, { path: 'a', body: '2' }]), /"a": duplicate entry/);
  });
});

describe('bombs and caps', () => {
  const zeros = Buffer.alloc(10 * MiB);

  it('zip bomb: a highly compressed file beyond the unpacked cap', async () => {
    const bytes = zipBytes([{ name: 'bomb', body: zeros, deflate: true }]);
    expect(bytes.length).toBeLessThan(64 * 1024);
    await expectRefused(bytes, /"bomb": unpacked size exceeds the cap of 1048576 bytes/);
  });

  it('zip bomb that lies about its size is stopped while inflating', async () => {
    const bytes = zipBytes([{ name: 'liar', body: zeros, deflate: true, declaredSize: 100 }]);
    await expectRefused(bytes, /"liar": too many bytes in the stream/);
  });

  it('many small files that add up beyond the cap', async () => {
    const entries: ZipEntry[] = Array.from({ length: 20 }, (_, i) => ({ name: `f${i}`, body: Buffer.alloc(100 * 1024), deflate: true }));
    await expectRefused(zipBytes(entries), /exceeds the cap/);
  });

  it('tar.gz bomb', async () => {
    const bytes = tarBytes([{ path: 'bomb', body: zeros }], { gzip: true });
    await expectRefused(bytes, /"bomb": unpacked size exceeds the cap/);
  });

  it('a gzip bomb of padding after the end of the tar stream is never inflated', async () => {
    // 1 GiB of zeros after the end-of-archive marker: reading stops at the marker (else the
    // stream cap, ~1.2 MiB here, would refuse it — and node-tar would buffer all of it).
    const bytes = Buffer.concat([gzipSync(tarBytes([{ path: 'a', body: 'x' }])), gzippedZeros(GiB)]);
    const result = await unpack(bytes);
    expect(result.entries).toBe(1);
    expect(await readFile(path.join(into, 'a'), 'utf8')).toBe('x');
  });

  it('a raw gzip bomb (zeros, not a tar) is refused at its first block', async () => {
    await expectRefused(gzippedZeros(GiB), /not a valid tar archive: the gzip data begins with an empty block/);
  });

  it('a gzip of something that is not a tar is refused at its first block', async () => {
    await expectRefused(gzipSync(Buffer.from('hello world\n'.repeat(100_000))), /the gzip data does not begin with a tar header/);
  });

  it('tar.gz bomb: one 1 GiB file, refused by its declared size, the limit named', async () => {
    await expectRefused(tarGzBomb(GiB), /"bomb": unpacked size exceeds the cap of 1048576 bytes \(sources\.maxUnpackedBytes\)/);
  });

  it('tar.gz bomb: many small files adding up past the cap', async () => {
    const entries = Array.from({ length: 40 }, (_, i) => ({ path: `f${i}`, body: Buffer.alloc(64 * 1024) }));
    await expectRefused(tarBytes(entries, { gzip: true }), /"f16": unpacked size exceeds the cap of 1048576 bytes \(sources\.maxUnpackedBytes\)/);
  });

  it('tar.gz bomb of skipped entries: the decompressed stream is capped, the limit named', async () => {
    // node-tar skips entry types it does not know (here a sparse file) unwritten, so the
    // writer never counts them: the cap on the decompressed stream does.
    await expectRefused(tarGzBomb(GiB, { type: 'SparseFile' }), /unpacked tar stream is larger than \d+ bytes \(sources\.maxUnpackedBytes plus/);
  });

  it('a gzip inside the gzip is refused', async () => {
    await expectRefused(gzipSync(gzipSync(tarBytes([{ path: 'a', body: 'x' }]))), /not a valid tar archive|decompression/);
  });

  it.each<[string, () => Buffer]>([
    ['tar', () => tarBytes(Array.from({ length: 60 }, (_, i) => ({ path: `f${i}`, body: 'x' })))],
    ['zip', () => zipBytes(Array.from({ length: 60 }, (_, i) => ({ name: `f${i}`, body: 'x' })))],
  ])('too many files in a %s', async (_, make) => {
    await expectRefused(make(), /more than (the cap of )?50|than the cap of 50/);
  });

  it('implied directories count as entries too', async () => {
    const deep = Array.from({ length: 60 }, (_, i) => `d${i}`).join('/');
    await expectRefused(tarBytes([{ path: `${deep}/f`, body: 'x' }]), /more than 50 entries/);
  });
});

describe('cancelling', () => {
  /** Bytes written into the tree so far (its files are at the top level here). */
  async function written(): Promise<number> {
    const names = await readdir(into).catch(() => []);
    const sizes = await Promise.all(names.map((n) => stat(path.join(into, n)).then((s) => s.size, () => 0)));
    return sizes.reduce((a, b) => a + b, 0);
  }

  it.each<[string, () => Buffer]>([
    ['tar.gz', () => tarGzBomb(GiB)],
    ['zip', () => zipBytes(Array.from({ length: 8 }, (_, i) => ({ name: `z${i}`, body: Buffer.alloc(8 * MiB), deflate: true })))],
  ])('an abort stops a %s unpack at once and removes the tree', async (_, make) => {
    const controller = new AbortController();
    const reason = errors.sourceCancelled('cancelled: test');
    const unpacking = unpack(make(), { maxUnpackedBytes: 4 * GiB, maxFiles: 50 }, controller.signal);
    unpacking.catch(() => {});
    while ((await written()) < MiB) await new Promise((r) => setTimeout(r, 5));
    controller.abort(reason);
    await expect(unpacking).rejects.toBe(reason);
    expect(existsSync(into)).toBe(false);
    await new Promise((r) => setTimeout(r, 200));
    expect(existsSync(into)).toBe(false); // nothing kept writing
  });

  it('an already aborted signal unpacks nothing', async () => {
    const reason = errors.sourceCancelled('cancelled: test');
    await expect(unpack(tarBytes([{ path: 'a', body: 'x' }]), LIMITS, AbortSignal.abort(reason))).rejects.toBe(reason);
    expect(existsSync(into)).toBe(false);
  });
});

describe('bad names', () => {
  it('a NUL byte in a zip name', async () => {
    await expectRefused(zipBytes([{ name: Buffer.from('a\0b'), body: 'x' }]), /NUL/);
  });

  it('a NUL byte in a tar pax path ends the name there (node-tar cuts it): nothing escapes', async () => {
    const result = await unpack(tarBytes([{ path: `${'p'.repeat(100)}\0/../../x`, body: 'x' }]));
    expect(result.entries).toBe(1);
    expect(await readFile(path.join(into, 'p'.repeat(100)), 'utf8')).toBe('x');
    expect(existsSync(path.join(work, 'x'))).toBe(false);
  });

  it.each<[string, Buffer]>([
    ['tar', tarBytes([{ path: `${'n'.repeat(300)}`, body: 'x' }])],
    ['zip', zipBytes([{ name: 'n'.repeat(300), body: 'x' }])],
  ])('an over-long name in a %s', async (_, bytes) => {
    await expectRefused(bytes, /longer than 255 bytes/);
  });

  it('an over-long path in a tar', async () => {
    const long = Array.from({ length: 30 }, () => 'x'.repeat(100)).join('/');
    await expectRefused(tarBytes([{ path: long, body: 'x' }]), /longer than 2048 bytes/);
  });
});

describe('not archives', () => {
  it('random bytes are refused before anything is created', async () => {
    await expectRefused(Buffer.from('<html>not found</html>'), /not a tar, tar.gz or zip archive/);
  });

  it('a truncated zip is refused', async () => {
    const bytes = zipBytes([{ name: 'a', body: 'hello world' }]);
    await expectRefused(bytes.subarray(0, bytes.length - 10), /not a valid zip archive/);
  });

  it('a tar.gz cut off in the middle of a file is refused', async () => {
    const bytes = tarBytes([{ path: 'a', body: randomBytes(256 * 1024) }], { gzip: true });
    await expectRefused(bytes.subarray(0, bytes.length / 2), /not a valid tar archive/);
  });

  it('a tar with a bad checksum is refused', async () => {
    const bytes = tarBytes([{ path: 'a', body: 'x' }]);
    bytes[0] = 'b'.charCodeAt(0);
    await expectRefused(bytes, /not a valid tar archive/);
  });

  it('an existing target directory is refused and left alone', async () => {
    await mkdir(into);
    await writeFile(path.join(into, 'keep'), 'mine');
    await expect(unpack(tarBytes([{ path: 'a', body: 'x' }]))).rejects.toMatchObject({ code: 'conflict' });
    expect(await readFile(path.join(into, 'keep'), 'utf8')).toBe('mine');
    expect((await lstat(into)).isDirectory()).toBe(true);
  });
});
