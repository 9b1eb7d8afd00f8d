/**
 * Unpacking a source: corral's checked unpacker (every entry through TreeWriter) next to
 * GNU tar and Info-ZIP unzip on the same archive, which check much less.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { unpackArchive } from '../src/core/sources/unpack.js';
import { tarBytes, zipBytes, type TarEntry } from '../test/sources/helpers/archives.js';
import { fmt, percentile, table, time, type Benchmark } from './lib.js';

const run = promisify(execFile);
const LIMITS = { maxUnpackedBytes: 1024 ** 3, maxFiles: 100_000 };

/** An app-like tree: 2000 small text files in 100 directories and 8 larger binaries. */
function appEntries(): TarEntry[] {
  const entries: TarEntry[] = [];
  for (let i = 0; i < 2000; i++) {
    entries.push({ path: `lib/m${i % 100}/file${i}.js`, body: `export const value${i} = ${JSON.stringify('x'.repeat(i % 4000))};\n` });
  }
  for (let i = 0; i < 8; i++) entries.push({ path: `assets/blob${i}.bin`, body: randomBytes(2 * 1024 * 1024) });
  return entries;
}

const bench: Benchmark = async () => {
  const work = await mkdtemp(path.join(tmpdir(), 'corral-bench-sources-'));
  try {
    const entries = appEntries();
    const bytes = entries.reduce((n, e) => n + Buffer.byteLength(e.body ?? ''), 0);
    const archives = {
      'tar.gz': tarBytes(entries, { gzip: true }),
      zip: zipBytes(entries.map((e) => ({ name: e.path, body: e.body ?? '', deflate: true }))),
    };
    const rows: (string | number)[][] = [];
    let n = 0;
    const fresh = async () => path.join(work, `out-${n++}`);
    for (const [format, archive] of Object.entries(archives)) {
      const file = path.join(work, `app.${format}`);
      await writeFile(file, archive);
      const corral = await time(5, async () => {
        const into = await fresh();
        await unpackArchive(file, into, LIMITS);
        await rm(into, { recursive: true });
      }, 1);
      const system = await time(5, async () => {
        const into = await fresh();
        await mkdir(into);
        if (format === 'zip') await run('unzip', ['-q', file, '-d', into]);
        else await run('tar', ['-xzf', file, '-C', into]);
        await rm(into, { recursive: true });
      }, 1);
      const tool = format === 'zip' ? 'unzip -q' : 'tar -xzf';
      const mb = (archive.length / 2 ** 20).toFixed(1);
      rows.push([`${format} (${mb} MiB)`, 'corral unpackArchive', fmt(percentile(corral, 50)), fmt(bytes / 2 ** 20 / (percentile(corral, 50) / 1000))]);
      rows.push([`${format} (${mb} MiB)`, tool, fmt(percentile(system, 50)), fmt(bytes / 2 ** 20 / (percentile(system, 50) / 1000))]);
    }
    return [
      {
        title: 'Unpacking a source',
        markdown:
          `${entries.length} entries, ${(bytes / 2 ** 20).toFixed(1)} MiB unpacked (2000 small files, 8 × 2 MiB binaries); ` +
          `median of 5 runs including removing the tree.\n\n` +
          table(['archive', 'unpacker', 'p50 ms', 'MiB/s'], rows),
      },
    ];
  } finally {
    await rm(work, { recursive: true, force: true });
  }
};

export default bench;
