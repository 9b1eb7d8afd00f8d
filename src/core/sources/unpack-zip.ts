/**
 * Reads a zip archive with yauzl and hands each entry to the TreeWriter, which owns the
 * policy. Names are decoded here (not by yauzl) so that bad names get the writer's error
 * messages; yauzl checks that every entry's actual size matches the declared one, and the
 * declared sizes are checked against the caps before anything is inflated. Inflating is
 * yauzl's zlib stream (off the event loop); every inflated chunk is counted by the writer. An
 * aborted signal stops it at the writer's next chunk; the entry in progress settles before
 * this returns, so the caller can remove the tree.
 */
import type { Readable } from 'node:stream';
import yauzl, { type Entry, type ZipFile } from 'yauzl';
import { errors, isCorralError } from '../errors.js';
import type { TreeWriter, UnpackLimits } from './tree-writer.js';

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const MADE_BY_UNIX = 3;
const MAX_LINK_TARGET_BYTES = 1024;

export async function unpackZip(file: string, tree: TreeWriter, limits: UnpackLimits, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted();
  let zip: ZipFile;
  try {
    zip = await yauzl.openPromise(file, { lazyEntries: true, decodeStrings: false, validateEntrySizes: true });
  } catch (e) {
    throw errors.badArchive(`not a valid zip archive: ${(e as Error).message}`);
  }
  try {
    if (zip.entryCount > limits.maxFiles) {
      throw errors.badArchive(`the zip archive has ${zip.entryCount} entries, more than the cap of ${limits.maxFiles}`);
    }
    let writing: Promise<void> = Promise.resolve();
    let onAbort = () => {};
    try {
      await new Promise<void>((resolve, reject) => {
        let done = false;
        const finish = (e?: unknown) => {
          done = true;
          if (e === undefined) resolve();
          else reject(e);
        };
        onAbort = () => finish(signal!.reason);
        signal?.addEventListener('abort', onAbort, { once: true });
        zip.on('entry', (entry: Entry) => {
          writing = writeEntry(zip, tree, entry);
          writing.then(() => done || zip.readEntry(), finish);
        });
        zip.on('end', () => finish());
        zip.on('error', finish);
        zip.readEntry();
      });
    } finally {
      signal?.removeEventListener('abort', onAbort);
      await writing.catch(() => {}); // the entry in progress stops at its next chunk
    }
  } catch (e) {
    throw isCorralError(e) ? e : errors.badArchive(`not a valid zip archive: ${(e as Error).message}`);
  } finally {
    zip.close();
  }
}

async function writeEntry(zip: ZipFile, tree: TreeWriter, entry: Entry): Promise<void> {
  const name = yauzl.getFileNameLowLevel(
    entry.generalPurposeBitFlag,
    entry.fileName as unknown as Buffer, // a Buffer with decodeStrings: false
    entry.extraFields,
    false,
  );
  const mode = entry.versionMadeBy >> 8 === MADE_BY_UNIX ? (entry.externalFileAttributes >>> 16) & 0xffff : 0;
  const type = mode & S_IFMT;
  const perm = type ? mode & 0o7777 : undefined;
  if (type === S_IFDIR || (type === 0 && name.endsWith('/'))) return tree.dir(name, perm);
  if (entry.isEncrypted()) throw tree.refuse(name, 'encrypted entries are not supported');
  if (type === S_IFLNK) {
    if (entry.uncompressedSize > MAX_LINK_TARGET_BYTES) throw tree.refuse(name, 'link target is too long');
    const target = Buffer.concat(await collect(await openEntry(zip, entry))).toString('utf8');
    return tree.symlink(name, target);
  }
  if (type !== 0 && type !== S_IFREG) throw tree.refuse(name, 'device files, FIFOs and sockets are not allowed');
  // Refuse an oversized entry before inflating a byte of it.
  await tree.file(name, perm, lazyBody(zip, entry, tree, name), entry.uncompressedSize);
}

/** The entry's content, opened only when the writer starts reading it. */
async function* lazyBody(zip: ZipFile, entry: Entry, tree: TreeWriter, name: string): AsyncIterable<Buffer> {
  const stream = await openEntry(zip, entry);
  try {
    yield* stream as AsyncIterable<Buffer>;
  } catch (e) {
    // yauzl's checks: actual size differs from the declared one, bad deflate data, …
    throw isCorralError(e) ? e : tree.refuse(name, (e as Error).message);
  } finally {
    stream.destroy();
  }
}

function openEntry(zip: ZipFile, entry: Entry): Promise<Readable> {
  return new Promise((resolve, reject) => zip.openReadStream(entry, (err, stream) => (err ? reject(err) : resolve(stream))));
}

async function collect(stream: Readable): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return chunks;
}
