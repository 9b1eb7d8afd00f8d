/**
 * Builds archives byte by byte for the tests, malicious ones included: tar through
 * node-tar's Header and Pax encoders (no path sanitising), zip through a small raw writer
 * (local headers, central directory, end record) that can also lie about sizes.
 */
import { crc32, deflateRawSync, gzipSync } from 'node:zlib';
import { Header, Pax } from 'tar';
import type { EntryTypeName } from 'tar/types';

export interface TarEntry {
  path: string;
  type?: EntryTypeName;
  body?: string | Buffer;
  mode?: number;
  linkpath?: string;
}

export function tarBytes(entries: TarEntry[], opts: { gzip?: boolean } = {}): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = typeof e.body === 'string' ? Buffer.from(e.body) : (e.body ?? Buffer.alloc(0));
    const type = e.type ?? 'File';
    const data = { path: e.path, type, size: body.length, mode: e.mode ?? (type === 'Directory' ? 0o755 : 0o644), linkpath: e.linkpath, mtime: new Date(0), uid: 0, gid: 0 };
    if (Buffer.byteLength(e.path) > 99 || Buffer.byteLength(e.linkpath ?? '') > 99) {
      blocks.push(new Pax({ path: e.path, linkpath: e.linkpath, mtime: new Date(0) }).encode());
    }
    const header = Buffer.alloc(512);
    new Header(data).encode(header);
    blocks.push(header, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  const tar = Buffer.concat(blocks);
  return opts.gzip ? gzipSync(tar) : tar;
}

const BOMB_CHUNK = 16 * 1024 * 1024;
let zerosMember: Buffer | undefined;

/**
 * `bytes` zeros as a gzip stream of repeated members (gunzip reads them as one stream), so a
 * gigabyte costs about 1 MiB and a few milliseconds to build, never held uncompressed.
 */
export function gzippedZeros(bytes: number): Buffer {
  zerosMember ??= gzipSync(Buffer.alloc(BOMB_CHUNK));
  const members: Buffer[] = Array.from({ length: Math.floor(bytes / BOMB_CHUNK) }, () => zerosMember!);
  if (bytes % BOMB_CHUNK) members.push(gzipSync(Buffer.alloc(bytes % BOMB_CHUNK)));
  return Buffer.concat(members);
}

/** A tar.gz holding one entry of `size` zeros (a file unless `type` says otherwise): a gzip bomb. */
export function tarGzBomb(size: number, opts: { name?: string; type?: EntryTypeName } = {}): Buffer {
  const header = Buffer.alloc(512);
  new Header({ path: opts.name ?? 'bomb', type: opts.type ?? 'File', size, mode: 0o644, mtime: new Date(0), uid: 0, gid: 0 }).encode(header);
  const padded = Math.ceil(size / 512) * 512;
  return Buffer.concat([gzipSync(header), gzippedZeros(padded + 1024)]); // the last two empty blocks end the archive
}

export interface ZipEntry {
  name: string | Buffer;
  body?: string | Buffer;
  /** Full unix mode incl. the file type bits, e.g. 0o100755, 0o120777 (symlink). */
  mode?: number;
  deflate?: boolean;
  /** Declare this uncompressed size instead of the real one. */
  declaredSize?: number;
}

export function zipBytes(entries: ZipEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = typeof e.name === 'string' ? Buffer.from(e.name) : e.name;
    const body = typeof e.body === 'string' ? Buffer.from(e.body) : (e.body ?? Buffer.alloc(0));
    const data = e.deflate ? deflateRawSync(body) : body;
    const method = e.deflate ? 8 : 0;
    const size = e.declaredSize ?? body.length;
    const crc = crc32(body);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed
    local.writeUInt16LE(0x0800, 6); // UTF-8 names
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    locals.push(local, name, data);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4); // made by unix
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(size, 24);
    central.writeUInt16LE(name.length, 28);
    const isDir = name.toString().endsWith('/');
    const mode = e.mode ?? (isDir ? 0o040755 : 0o100644);
    central.writeUInt32LE((mode << 16) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);
    offset += local.length + name.length + data.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}
