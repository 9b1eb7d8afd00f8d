/**
 * `POST /instances` as multipart/form-data: a `spec` field (the JSON spec, validated by the
 * same schema as a JSON body) and an `archive` file (tar, tar.gz or zip), streamed to a
 * temporary file `<data>/tmp/upload-<uuid>` with a size cap — never held in memory. An
 * app's deploy reads its `options` field and `archive` the same way.
 *
 * The temporary file never outlives its request: a refusal while reading (too large, bad
 * field, client gone) removes it; `thenDiscard` removes it after its use unless the use took
 * it (the instance service renames it into the instance's dir), also when the use is refused
 * (quota, name taken); `sweepUploads` removes what a crashed server left, at start.
 */
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Static, TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { FastifyRequest } from 'fastify';
import { errors } from '../../../core/errors.js';
import { InstanceSpecSchema, type InstanceSpecInput, type UploadedArchive } from '../../../core/instances/index.js';

const TMP_DIR = 'tmp';
const PREFIX = 'upload-';

/** Runs `use`, then removes the upload's temporary file whatever happened (if `use` took it, it is gone already). */
export async function thenDiscard<T>(archive: UploadedArchive | undefined, use: () => Promise<T>): Promise<T> {
  try {
    return await use();
  } finally {
    if (archive) await rm(archive.file, { force: true });
  }
}

/**
 * Removes upload files left by a server that stopped mid-request (a crash, SIGKILL). Only
 * this server's requests write them, so at its start none is in use.
 */
export async function sweepUploads(dataDir: string): Promise<number> {
  const tmpDir = path.join(dataDir, TMP_DIR);
  const names = await readdir(tmpDir).catch(() => [] as string[]);
  const stale = names.filter((n) => n.startsWith(PREFIX));
  await Promise.all(stale.map((n) => rm(path.join(tmpDir, n), { force: true })));
  return stale.length;
}

export async function readUpload(
  request: FastifyRequest,
  dataDir: string,
  maxBytes: number,
): Promise<{ spec: InstanceSpecInput; archive?: UploadedArchive }> {
  const { value, archive } = await readJsonAndArchive(request, dataDir, maxBytes, 'spec', InstanceSpecSchema);
  if (value === undefined) throw errors.validation('multipart: missing the "spec" field');
  return { spec: value, ...(archive && { archive }) };
}

/**
 * The same for any request of one JSON field (checked against `schema`) and one `archive`
 * file, e.g. an app's deploy (`options` + `archive`); either may be missing.
 */
export async function readJsonAndArchive<S extends TSchema>(
  request: FastifyRequest,
  dataDir: string,
  maxBytes: number,
  field: string,
  schema: S,
): Promise<{ value?: Static<S>; archive?: UploadedArchive }> {
  const tmpDir = path.join(dataDir, TMP_DIR);
  await mkdir(tmpDir, { recursive: true, mode: 0o700 });
  let value: Static<S> | undefined;
  let archive: UploadedArchive | undefined;
  try {
    for await (const part of request.parts({ limits: { fileSize: maxBytes, files: 1, fields: 4 } })) {
      if (part.type === 'field' && part.fieldname === field) {
        // A part sent with `Content-Type: application/json` arrives already parsed.
        value = parseJsonField(part.value, field, schema);
      } else if (part.type === 'file' && part.fieldname === 'archive' && !archive) {
        const file = path.join(tmpDir, `${PREFIX}${randomUUID()}`);
        archive = { file, fileName: safeName(part.filename) };
        await pipeline(part.file, createWriteStream(file, { mode: 0o600 }));
        if (part.file.truncated) throw errors.sourceTooLarge(`the archive is larger than ${maxBytes} bytes`);
      } else {
        if (part.type === 'file') part.file.resume();
        throw errors.validation(`multipart: unknown part "${part.fieldname}"; send "${field}" (JSON) and "archive" (a file)`);
      }
    }
    return { ...(value !== undefined && { value }), ...(archive && { archive }) };
  } catch (e) {
    if (archive) await rm(archive.file, { force: true });
    const code = (e as { code?: string }).code;
    if (code === 'FST_FILES_LIMIT' || code === 'FST_FIELDS_LIMIT' || code === 'FST_PARTS_LIMIT') {
      throw errors.validation(`multipart: too many parts; send one "${field}" field and one "archive" file`);
    }
    throw e;
  }
}

function parseJsonField<S extends TSchema>(raw: unknown, field: string, schema: S): Static<S> {
  let value = raw;
  if (typeof raw === 'string') {
    try {
      value = JSON.parse(raw);
    } catch (e) {
      throw errors.badJson(`the "${field}" field is not valid JSON: ${(e as Error).message}`);
    }
  }
  const first = [...Value.Errors(schema, value)][0];
  if (first) {
    const where = `${field}${first.path.replaceAll('/', '.')}`;
    throw errors.validation(`${where}: ${first.message}`);
  }
  return value as Static<S>;
}

/** The uploaded file's name, kept only as a label: no path, printable, short. */
function safeName(name: string | undefined): string {
  return (path.basename(name ?? 'archive').replace(/[^\w.+-]/g, '_') || 'archive').slice(0, 128);
}
