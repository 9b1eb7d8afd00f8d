/**
 * Writes archive entries into a fresh directory, whatever the archive format, and enforces
 * the unpacking policy in one place:
 *
 * - names: relative, no `..`, no NUL, each component ≤ 255 bytes, the whole ≤ 2048 bytes;
 * - nothing is ever written through a symbolic link or over an existing entry (the tree is
 *   fresh and only this writer touches it, so its own index of what it created is the truth;
 *   files are also opened with O_EXCL | O_NOFOLLOW);
 * - symbolic links must be relative and resolve inside the tree — checked when created and
 *   again over the whole tree at the end, since a later link can change where an earlier
 *   one leads; hard links may only point at a regular file created earlier;
 * - modes keep only the permission bits (setuid, setgid and sticky are dropped), and the
 *   owner can always read and write (and enter directories) so the tree can be removed;
 * - the entry count and the total unpacked size are capped while writing (zip and tar bombs);
 * - an aborted `signal` (instance deleted, server stopping, time limit) stops it at the next
 *   entry or chunk, with the signal's reason as the error.
 */
import { constants } from 'node:fs';
import { chmod, link, mkdir, open, symlink } from 'node:fs/promises';
import path from 'node:path';
import { errors, type CorralError } from '../errors.js';
import { abortable } from './abortable.js';

export interface UnpackLimits {
  /** Total bytes of file content. */
  maxUnpackedBytes: number;
  /** Entries created: files, directories (also implied ones) and links. */
  maxFiles: number;
}

const MAX_COMPONENT_BYTES = 255;
const MAX_PATH_BYTES = 2048;
const MAX_LINK_TARGET_BYTES = 1024;
const MAX_LINK_HOPS = 40; // as the kernel's ELOOP limit

type Node = { kind: 'dir' } | { kind: 'file' } | { kind: 'symlink'; target: string };

export class TreeWriter {
  private readonly nodes = new Map<string, Node>([['', { kind: 'dir' }]]);
  private bytes = 0;
  private entries = 0;

  constructor(
    /** An existing, empty directory. */
    readonly root: string,
    private readonly limits: UnpackLimits,
    private readonly signal?: AbortSignal,
  ) {}

  get stats(): { entries: number; bytes: number } {
    return { entries: this.entries, bytes: this.bytes };
  }

  /** The error for a refused entry: names the entry and the reason. */
  refuse(rawName: string, reason: string): CorralError {
    return errors.badArchive(`archive entry ${printable(rawName)}: ${reason}`);
  }

  async dir(rawName: string, mode: number | undefined): Promise<void> {
    const rel = this.name(rawName);
    if (rel === '') return; // "./" — the root itself
    const existing = this.nodes.get(rel);
    if (existing?.kind === 'dir') return chmod(this.abs(rel), dirMode(mode));
    if (existing) throw this.refuse(rawName, 'duplicate entry');
    await this.parents(rawName, rel);
    this.add(rawName, rel, { kind: 'dir' });
    await mkdir(this.abs(rel), { mode: 0o700 });
    await chmod(this.abs(rel), dirMode(mode));
  }

  /** Writes a regular file from `body`, counting its bytes against the cap as they come. */
  async file(rawName: string, mode: number | undefined, body: AsyncIterable<Buffer>, declaredSize?: number): Promise<void> {
    const rel = await this.newEntry(rawName, { kind: 'file' });
    if (declaredSize !== undefined && this.bytes + declaredSize > this.limits.maxUnpackedBytes) throw this.tooBig(rawName);
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
    const handle = await open(this.abs(rel), flags, 0o600);
    try {
      await handle.chmod(fileMode(mode));
      for await (const chunk of abortable(body, this.signal)) {
        this.bytes += chunk.length;
        if (this.bytes > this.limits.maxUnpackedBytes) throw this.tooBig(rawName);
        await handle.write(chunk);
      }
    } finally {
      await handle.close();
    }
  }

  async symlink(rawName: string, target: string): Promise<void> {
    if (target.includes('\0')) throw this.refuse(rawName, 'link target contains a NUL byte');
    if (Buffer.byteLength(target) > MAX_LINK_TARGET_BYTES) throw this.refuse(rawName, 'link target is too long');
    if (target === '') throw this.refuse(rawName, 'empty link target');
    if (target.startsWith('/')) throw this.refuse(rawName, `symbolic link to the absolute path ${printable(target)}`);
    const rel = this.name(rawName);
    const lexical = path.posix.normalize(path.posix.join(path.posix.dirname(rel), target));
    if (lexical === '..' || lexical.startsWith('../')) {
      throw this.refuse(rawName, `symbolic link to ${printable(target)} points outside the archive`);
    }
    await this.newEntry(rawName, { kind: 'symlink', target });
    await symlink(target, this.abs(rel));
  }

  /** A hard link to a regular file written earlier (tar names the target from the root). */
  async hardlink(rawName: string, rawTarget: string): Promise<void> {
    let targetRel: string;
    try {
      targetRel = this.name(rawTarget);
    } catch {
      throw this.refuse(rawName, `hard link to ${printable(rawTarget)}, outside the archive`);
    }
    if (this.nodes.get(targetRel)?.kind !== 'file') {
      throw this.refuse(rawName, `hard link to ${printable(rawTarget)}, which is not a file earlier in the archive`);
    }
    const rel = await this.newEntry(rawName, { kind: 'file' });
    await link(this.abs(targetRel), this.abs(rel));
  }

  /** Checks every symbolic link against the finished tree: none may lead outside or loop. */
  finish(): void {
    for (const [rel, node] of this.nodes) {
      if (node.kind !== 'symlink') continue;
      const resolved = this.resolve(rel);
      if (typeof resolved !== 'string') {
        const why = resolved.loop ? 'is part of a loop of links' : 'resolves outside the archive through other links';
        throw this.refuse(rel, `symbolic link to ${printable(node.target)} ${why}`);
      }
    }
  }

  /** What a path in the tree is, following symbolic links inside it (undefined if absent). */
  kindOf(rel: string): { path: string; kind: Node['kind'] } | undefined {
    const resolved = this.resolve(rel);
    if (typeof resolved !== 'string') return undefined;
    const node = this.nodes.get(resolved);
    return node && { path: resolved, kind: node.kind };
  }

  /** The names directly under a directory of the tree. */
  children(dirRel: string): string[] {
    const prefix = dirRel === '' ? '' : `${dirRel}/`;
    return [...this.nodes.keys()].filter((k) => k !== '' && k.startsWith(prefix) && !k.slice(prefix.length).includes('/'));
  }

  abs(rel: string): string {
    return path.join(this.root, rel);
  }

  /**
   * Resolves a path the way the kernel would, but over this writer's index: every symbolic
   * link met is replaced by its target. Returns the path inside the tree it ends at, or why
   * it does not end inside.
   */
  private resolve(rel: string): string | { loop: boolean } {
    const stack: string[] = [];
    let queue = rel.split('/');
    let hops = 0;
    while (queue.length) {
      const part = queue.shift()!;
      if (part === '' || part === '.') continue;
      if (part === '..') {
        if (!stack.length) return { loop: false };
        stack.pop();
        continue;
      }
      stack.push(part);
      const node = this.nodes.get(stack.join('/'));
      if (node?.kind !== 'symlink') continue;
      if (++hops > MAX_LINK_HOPS) return { loop: true };
      stack.pop();
      if (node.target.startsWith('/')) return { loop: false };
      queue = [...node.target.split('/'), ...queue];
    }
    return stack.join('/');
  }

  /** Validates an archive name: the normalised relative path, '' for the root. */
  private name(rawName: string): string {
    if (rawName.includes('\0')) throw this.refuse(rawName, 'name contains a NUL byte');
    if (rawName.startsWith('/')) throw this.refuse(rawName, 'absolute path');
    if (Buffer.byteLength(rawName) > MAX_PATH_BYTES) throw this.refuse(rawName, `name is longer than ${MAX_PATH_BYTES} bytes`);
    const parts = rawName.split('/').filter((p) => p !== '' && p !== '.');
    if (parts.includes('..')) throw this.refuse(rawName, 'name contains a ".." component');
    if (parts.some((p) => Buffer.byteLength(p) > MAX_COMPONENT_BYTES)) {
      throw this.refuse(rawName, `a path component is longer than ${MAX_COMPONENT_BYTES} bytes`);
    }
    return parts.join('/');
  }

  private async newEntry(rawName: string, node: Node): Promise<string> {
    const rel = this.name(rawName);
    if (rel === '') throw this.refuse(rawName, 'empty name');
    if (this.nodes.has(rel)) throw this.refuse(rawName, 'duplicate entry');
    await this.parents(rawName, rel);
    this.add(rawName, rel, node);
    return rel;
  }

  /** Creates missing parent directories; refuses to go through anything but a directory. */
  private async parents(rawName: string, rel: string): Promise<void> {
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      const node = this.nodes.get(dir);
      if (node?.kind === 'dir') continue;
      if (node?.kind === 'symlink') throw this.refuse(rawName, `path goes through the symbolic link ${printable(dir)}`);
      if (node) throw this.refuse(rawName, `path goes through the file ${printable(dir)}`);
      this.add(rawName, dir, { kind: 'dir' });
      await mkdir(this.abs(dir), { mode: 0o755 });
    }
  }

  private add(rawName: string, rel: string, node: Node): void {
    this.signal?.throwIfAborted();
    if (++this.entries > this.limits.maxFiles) {
      throw this.refuse(rawName, `more than ${this.limits.maxFiles} entries in the archive (sources.maxFiles)`);
    }
    this.nodes.set(rel, node);
  }

  private tooBig(rawName: string): CorralError {
    return this.refuse(rawName, `unpacked size exceeds the cap of ${this.limits.maxUnpackedBytes} bytes (sources.maxUnpackedBytes)`);
  }
}

/** Permission bits only (no setuid/setgid/sticky); the owner can always read and write. */
const fileMode = (mode: number | undefined) => ((mode ?? 0o644) & 0o777) | 0o600;
const dirMode = (mode: number | undefined) => ((mode ?? 0o755) & 0o777) | 0o700;

/** A name safe to put in a message: quoted, control characters escaped, long ones cut. */
export function printable(name: string): string {
  const cut = name.length > 200 ? `${name.slice(0, 200)}…` : name;
  return JSON.stringify(cut);
}
