/**
 * Unpacks a tar, tar.gz or zip archive (told apart by its first bytes) into a directory
 * that must not exist yet. The rules — no absolute paths, no `..`, no links leading out, no
 * device files, no setuid bits, caps on entries and unpacked bytes — live in TreeWriter.
 * On any failure the partly unpacked directory is removed and a `bad_archive` error names
 * the entry and the reason. An aborted `signal` stops the work at once (its reason is the
 * error), and the directory is removed too.
 */
import { mkdir, rm } from 'node:fs/promises';
import { errors } from '../errors.js';
import { sniffArchiveFile, type ArchiveFormat } from './archive-format.js';
import { TreeWriter, type UnpackLimits } from './tree-writer.js';
import { unpackTar } from './unpack-tar.js';
import { unpackZip } from './unpack-zip.js';

export type { UnpackLimits } from './tree-writer.js';

export interface Unpacked {
  dir: string;
  format: ArchiveFormat;
  /** Entries created (files, directories, links). */
  entries: number;
  /** Bytes of file content written. */
  bytes: number;
  /** The index of what was written, to look paths up without following links out. */
  tree: TreeWriter;
}

export async function unpackArchive(file: string, into: string, limits: UnpackLimits, signal?: AbortSignal): Promise<Unpacked> {
  signal?.throwIfAborted();
  const format = await sniffArchiveFile(file);
  if (!format) throw errors.badArchive('not a tar, tar.gz or zip archive');
  try {
    await mkdir(into, { mode: 0o755 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw errors.conflict(`cannot unpack into ${into}: it already exists`);
    throw e;
  }
  const tree = new TreeWriter(into, limits, signal);
  try {
    if (format === 'zip') await unpackZip(file, tree, limits, signal);
    else await unpackTar(file, format === 'tar.gz', tree, limits, signal);
    signal?.throwIfAborted();
    tree.finish();
  } catch (e) {
    await rm(into, { recursive: true, force: true });
    throw e;
  }
  return { dir: into, format, ...tree.stats, tree };
}
