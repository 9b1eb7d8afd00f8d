/**
 * Sources: an app as an archive (tar, tar.gz, zip), downloaded from a URL or uploaded, then
 * unpacked safely with its Procfile read. One entry point, `prepareSource`:
 *
 *     const source = await prepareSource({
 *       url: 'https://example.org/app.tar.gz',   // or archive: <Buffer | stream>
 *       into: '/data/sources/<instance id>',     // must not exist yet
 *       config: config.sources,                  // caps and sources.allowPrivate
 *       processType: 'web',                      // optional: must be in the Procfile
 *       onState: (state) => …,                   // 'downloading', then 'unpacking'
 *     });
 *     // source.appDir: the cwd; source.process: { type, env, command, line }
 *
 * On any failure `into` does not exist afterwards and the error is a CorralError:
 * `source_refused` (address policy, not http/https), `download_failed` (status, content
 * type, timeout, network), `source_too_large`, `bad_archive` (also past
 * `unpackTimeoutSeconds`), `no_procfile`, `procfile_invalid` (with the line),
 * `unknown_process_type`, or the reason `signal` was aborted with. docs/sources.md has the
 * mapping to smartmob-agent's states.
 */
import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, mkdir, open, rm } from 'node:fs/promises';
import path from 'node:path';
import { errors } from '../errors.js';
import { createAddressPolicy } from './address-policy.js';
import { writeCappedFile } from './capped-file.js';
import type { SourcesConfig } from './config.js';
import { download, type Resolver } from './download.js';
import { commandFor, parseProcfile, type Procfile, type ProcfileEntry } from './procfile.js';
import type { TreeWriter } from './tree-writer.js';
import { unpackArchive, type Unpacked } from './unpack.js';

export { commandFor, parseProcfile, processEnv, type Procfile, type ProcfileEntry } from './procfile.js';
export { createAddressPolicy, type AddressPolicy } from './address-policy.js';
export { sourceUrl } from './download.js';
export type { SourcesConfig } from './config.js';

export type SourceState = 'downloading' | 'unpacking';

export interface PrepareSourceOptions {
  /** An http or https URL to download the archive from. Give this or `archive`. */
  url?: string;
  /** An uploaded archive. */
  archive?: Buffer | AsyncIterable<Buffer>;
  /** Directory to unpack into; must not exist (its parent is created if needed). */
  into: string;
  /** The `sources` config section. */
  config: SourcesConfig;
  /** The process type the caller will run: checked against the Procfile. */
  processType?: string;
  /** Called as the work moves on: 'downloading' (URL sources only), then 'unpacking'. */
  onState?: (state: SourceState) => void;
  /** Cancels the download or unpack in progress at once; the call rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Host name resolver for downloads (tests); the system's by default. */
  resolve?: Resolver;
}

export interface PreparedSource {
  /** The unpacked archive (= `into`). */
  dir: string;
  /** Where the Procfile is — `dir`, or the archive's single top-level directory — to run in. */
  appDir: string;
  format: Unpacked['format'];
  /** Entries and bytes unpacked. */
  entries: number;
  bytes: number;
  /** The parsed Procfile, or null if the source has none. */
  procfile: Procfile | null;
  /** The entry for `processType`, when one was asked for. */
  process?: ProcfileEntry;
}

const PROCFILE = 'Procfile';
const MAX_PROCFILE_BYTES = 64 * 1024;

export async function prepareSource(opts: PrepareSourceOptions): Promise<PreparedSource> {
  if ((opts.url === undefined) === (opts.archive === undefined)) throw errors.badRequest('a source is either a url or an archive');
  // Checked again when unpacking; here so a download is not wasted.
  if (await lstat(opts.into).then(() => true, () => false)) throw errors.conflict(`cannot unpack into ${opts.into}: it already exists`);
  await mkdir(path.dirname(opts.into), { recursive: true });
  const archiveFile = path.join(path.dirname(opts.into), `.${path.basename(opts.into)}.${randomUUID()}.archive`);
  const { config } = opts;
  try {
    if (opts.url !== undefined) {
      opts.onState?.('downloading');
      await download({
        url: opts.url,
        to: archiveFile,
        policy: createAddressPolicy(config.allowPrivate),
        maxBytes: config.maxDownloadBytes,
        timeoutMs: config.downloadTimeoutSeconds * 1000,
        ...(opts.signal && { signal: opts.signal }),
        ...(opts.resolve && { resolve: opts.resolve }),
      });
    }
    const deadline = unpackDeadline(config.unpackTimeoutSeconds, opts.signal);
    try {
      if (opts.archive !== undefined) await writeCappedFile(archiveFile, opts.archive, config.maxDownloadBytes, deadline.signal);
      opts.onState?.('unpacking');
      const limits = { maxUnpackedBytes: config.maxUnpackedBytes, maxFiles: config.maxFiles };
      const unpacked = await unpackArchive(archiveFile, opts.into, limits, deadline.signal);
      try {
        return await withProcfile(unpacked, opts.processType);
      } catch (e) {
        await rm(opts.into, { recursive: true, force: true });
        throw e;
      }
    } finally {
      deadline.clear();
    }
  } finally {
    await rm(archiveFile, { force: true });
  }
}

/** `parent` (cancellation) or the unpack time limit, whichever comes first. */
function unpackDeadline(seconds: number, parent: AbortSignal | undefined): { signal: AbortSignal; clear(): void } {
  const timeout = new AbortController();
  const timer = setTimeout(
    () => timeout.abort(errors.badArchive(`unpacking took longer than ${seconds} s (sources.unpackTimeoutSeconds)`)),
    seconds * 1000,
  );
  return { signal: parent ? AbortSignal.any([parent, timeout.signal]) : timeout.signal, clear: () => clearTimeout(timer) };
}

async function withProcfile(unpacked: Unpacked, processType: string | undefined): Promise<PreparedSource> {
  const { tree } = unpacked;
  const appRel = findAppDir(tree);
  const procfile = appRel === undefined ? null : parseProcfile(await readProcfile(tree, appRel));
  const prepared: PreparedSource = {
    dir: unpacked.dir,
    appDir: tree.abs(appRel ?? ''),
    format: unpacked.format,
    entries: unpacked.entries,
    bytes: unpacked.bytes,
    procfile,
  };
  if (processType !== undefined) {
    if (!procfile) throw errors.noProcfile('the source has no Procfile at its top level (nor in its single top-level directory)');
    prepared.process = commandFor(procfile, processType);
  }
  return prepared;
}

/** '' when the Procfile is at the top; the single top-level directory when it is there. */
function findAppDir(tree: TreeWriter): string | undefined {
  if (tree.kindOf(PROCFILE)) return '';
  const top = tree.children('');
  const only = top.length === 1 ? top[0]! : undefined;
  if (only !== undefined && tree.kindOf(only)?.kind === 'dir' && tree.kindOf(`${only}/${PROCFILE}`)) return only;
  return undefined;
}

async function readProcfile(tree: TreeWriter, appRel: string): Promise<string> {
  // Resolved through the tree's own index: links were checked to stay inside.
  const found = tree.kindOf(appRel ? `${appRel}/${PROCFILE}` : PROCFILE)!;
  if (found.kind !== 'file') throw errors.procfileInvalid('the Procfile is not a regular file');
  const handle = await open(tree.abs(found.path), constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const { size } = await handle.stat();
    if (size > MAX_PROCFILE_BYTES) throw errors.procfileInvalid(`the Procfile is larger than ${MAX_PROCFILE_BYTES} bytes`);
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}
