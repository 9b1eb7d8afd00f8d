/**
 * Reads a tar or tar.gz archive with node-tar's Parser (strict: a bad header or checksum is
 * an error, not a warning) and hands each entry to the TreeWriter, which owns the policy.
 * node-tar's own extractor is not used: its link and path rules are its own, and here one
 * writer enforces the same rules for tar and zip.
 *
 * Decompression is done here, not by the Parser, so the decompressed stream can be capped
 * (a gzip bomb of padding or ignored entries never reaches the writer's byte count), and
 * stopped early:
 *
 * - the first 512 decompressed bytes must be a tar header: a gzip of anything else (a raw
 *   `.gz` of a text file, or of a gigabyte of zeros) is refused there, not inflated;
 * - at the end-of-archive marker (two empty blocks) reading stops: what follows is ignored,
 *   as GNU tar does, and never inflated (node-tar's Parser would keep buffering it, copying
 *   its whole buffer for each chunk, which made a padding bomb take minutes of CPU);
 * - an aborted signal stops it at once, and the writes in progress settle before it
 *   returns, so the caller can remove the tree.
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { Header, Parser, type ReadEntry } from 'tar';
import { errors, isCorralError } from '../errors.js';
import { abortable } from './abortable.js';
import { printable, type TreeWriter, type UnpackLimits } from './tree-writer.js';

/** Header and padding allowance per entry on top of the content, for the decompressed cap. */
const TAR_OVERHEAD_PER_ENTRY = 4096;
const BLOCK = 512;

export async function unpackTar(file: string, gzipped: boolean, tree: TreeWriter, limits: UnpackLimits, signal?: AbortSignal): Promise<void> {
  const streamCap = limits.maxUnpackedBytes + (limits.maxFiles + 2) * TAR_OVERHEAD_PER_ENTRY;
  const source: Readable = gzipped ? pipeline(createReadStream(file), createGunzip(), () => {}) : createReadStream(file);
  // Nested compression (a gzip inside the gzip) is refused: the Parser would otherwise
  // decompress it again, uncapped; a ratio limit of 1 stops it at its first chunk.
  const parser = new Parser({ strict: true, maxDecompressionRatio: 1, zstd: false, brotli: false });
  let sawEnd = false;
  parser.on('eof', () => (sawEnd = true));

  let failure: unknown;
  // Ends the entry being written when anything fails: its data will never come.
  const stopped = new AbortController();
  let onFailure!: (e: unknown) => void;
  const failed = new Promise<never>((_, reject) => (onFailure = reject));
  failed.catch(() => {}); // observed through the races below
  const fail = (e: unknown) => {
    if (failure !== undefined) return;
    failure = e;
    stopped.abort(e);
    source.destroy();
    onFailure(e);
  };
  const onAbort = () => fail(signal!.reason);
  signal?.addEventListener('abort', onAbort, { once: true });

  // Entries are handled one after another: a directory's mkdir must finish before the next
  // entry's path is checked. A file entry waits unread meanwhile, which pauses the Parser.
  let chain: Promise<void> = Promise.resolve();
  parser.on('entry', (entry: ReadEntry) => {
    chain = chain
      .then(async () => {
        if (failure !== undefined) return void entry.resume();
        await writeEntry(tree, entry, stopped.signal);
      })
      .catch(fail);
  });
  parser.on('error', fail);
  // Plain listeners, not events.once: that would also reject on 'error', handled by fail().
  const parsed = new Promise((resolve) => parser.once('end', resolve));

  try {
    signal?.throwIfAborted();
    let total = 0;
    let head = Buffer.alloc(0);
    for await (const chunk of source as AsyncIterable<Buffer>) {
      if (head.length < BLOCK) {
        head = Buffer.concat([head, chunk.subarray(0, BLOCK - head.length)]);
        if (head.length === BLOCK) checkFirstBlock(head, gzipped);
      }
      total += chunk.length;
      if (total > streamCap) {
        throw errors.badArchive(
          `the unpacked tar stream is larger than ${streamCap} bytes (sources.maxUnpackedBytes plus ${TAR_OVERHEAD_PER_ENTRY} bytes per entry for headers)`,
        );
      }
      if (!parser.write(chunk)) await Promise.race([new Promise((resolve) => parser.once('drain', resolve)), failed]);
      if (failure !== undefined || sawEnd) break;
    }
    if (failure === undefined) {
      parser.end();
      await Promise.race([parsed, failed]);
      await Promise.race([chain, failed]);
    }
  } catch (e) {
    fail(e);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  if (failure === undefined) return;
  await chain; // settles at once: the entry in progress stopped waiting for its data
  throw asArchiveError(failure);
}

/** Refuses a stream that does not start like a tar archive, before inflating more of it. */
function checkFirstBlock(block: Buffer, gzipped: boolean): void {
  const what = gzipped ? 'the gzip data' : 'the archive';
  let header: Header;
  try {
    header = new Header(block);
  } catch {
    throw errors.badArchive(`not a valid tar archive: ${what} does not begin with a tar header`);
  }
  if (header.nullBlock) throw errors.badArchive(`not a valid tar archive: ${what} begins with an empty block, not a tar header`);
  if (!header.cksumValid) throw errors.badArchive(`not a valid tar archive: ${what} does not begin with a tar header (bad checksum)`);
}

async function writeEntry(tree: TreeWriter, entry: ReadEntry, stopped: AbortSignal): Promise<void> {
  switch (entry.type) {
    case 'Directory':
      await tree.dir(entry.path, entry.mode);
      break;
    case 'File':
    case 'OldFile':
    case 'ContiguousFile':
      return tree.file(entry.path, entry.mode, abortable(entry as AsyncIterable<Buffer>, stopped), entry.size);
    case 'SymbolicLink':
      await tree.symlink(entry.path, entry.linkpath ?? '');
      break;
    case 'Link':
      await tree.hardlink(entry.path, entry.linkpath ?? '');
      break;
    case 'CharacterDevice':
    case 'BlockDevice':
    case 'FIFO':
      throw tree.refuse(entry.path, `${entry.type} entries (device files, FIFOs) are not allowed`);
    default:
      // (Types node-tar does not know never get here: its Parser skips them unwritten.)
      throw tree.refuse(entry.path, `unsupported entry type ${entry.type}`);
  }
  entry.resume();
}

function asArchiveError(e: unknown) {
  if (isCorralError(e)) return e;
  const err = e as NodeJS.ErrnoException & { tarCode?: string; header?: { path?: string } };
  const where = err.header?.path ? ` at entry ${printable(err.header.path)}` : '';
  if (err.tarCode || err.code === 'Z_DATA_ERROR' || err.code === 'Z_BUF_ERROR') {
    return errors.badArchive(`not a valid tar archive${where}: ${err.message}`);
  }
  return e;
}
