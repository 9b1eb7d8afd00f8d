/**
 * Tells an archive's format from its first bytes, not from its name or content type
 * (servers often answer application/octet-stream): gzip magic, zip's local header, or the
 * `ustar` magic of a POSIX/GNU tar header.
 */
import { open } from 'node:fs/promises';

export type ArchiveFormat = 'zip' | 'tar' | 'tar.gz';

/** Bytes needed to tell the formats apart: a whole tar header block. */
export const SNIFF_BYTES = 512;

export function sniffArchive(head: Buffer): ArchiveFormat | undefined {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'tar.gz';
  // A local file header, or the end-of-central-directory record of an empty zip.
  if (head.subarray(0, 4).equals(Buffer.from('PK\x03\x04', 'latin1'))) return 'zip';
  if (head.subarray(0, 4).equals(Buffer.from('PK\x05\x06', 'latin1'))) return 'zip';
  if (head.subarray(257, 262).toString('latin1') === 'ustar') return 'tar';
  return undefined;
}

export async function sniffArchiveFile(file: string): Promise<ArchiveFormat | undefined> {
  const handle = await open(file, 'r');
  try {
    const head = Buffer.alloc(SNIFF_BYTES);
    const { bytesRead } = await handle.read(head, 0, SNIFF_BYTES, 0);
    return sniffArchive(head.subarray(0, bytesRead));
  } finally {
    await handle.close();
  }
}
