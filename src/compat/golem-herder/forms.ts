/**
 * golem-herder's clients send form fields: in the query, urlencoded, or multipart (files as
 * parts). They are merged into one map of name → text or bytes and checked against a schema,
 * so the same TypeBox schema validates every way a field can arrive.
 */
import multipart from '@fastify/multipart';
import { type Static, type TSchema } from '@sinclair/typebox';
import { Value, ValueErrorType } from '@sinclair/typebox/value';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Corral } from '../../core/corral.js';
import { errors } from '../../core/errors.js';

export type FormValue = string | Buffer;

/** Lets a plugin scope read multipart bodies as key → value (a file part's value is its bytes, kept in memory up to the limits). */
export async function acceptMultipart(app: FastifyInstance, limits: { fileSize: number; files: number; bodyLimit: number }): Promise<void> {
  await app.register(multipart, {
    attachFieldsToBody: 'keyValues',
    limits: { fileSize: limits.fileSize, files: limits.files, fields: limits.files + 16, fieldSize: limits.fileSize, parts: limits.files + 16 },
  });
}

/** Room for the largest allowed files (base64 in JSON, or multipart) plus the other fields. */
export function filesBodyLimit(corral: Corral): number {
  return Math.max(corral.config.bodyLimitBytes, Math.ceil(corral.config.jobs.maxTotalFileBytes * 1.4) + 65536);
}

/** The query's and the body's fields (body wins); a field given twice is a 400. */
export function formFields(request: FastifyRequest): Record<string, FormValue> {
  const out: Record<string, FormValue> = {};
  for (const source of [request.query, request.body]) {
    if (source == null) continue;
    if (typeof source !== 'object' || Buffer.isBuffer(source)) throw errors.badRequest('send form fields (urlencoded or multipart)');
    for (const [k, v] of Object.entries(source as Record<string, unknown>)) {
      if (Array.isArray(v)) throw errors.validation(`field "${k}" is given more than once`);
      if (typeof v === 'string' || Buffer.isBuffer(v)) out[k] = v;
      else if (typeof v === 'number' || typeof v === 'boolean') out[k] = String(v);
      else throw errors.validation(`field "${k}" must be text or a file`);
    }
  }
  return out;
}

/** Refuses fields beyond `allowed` (for requests whose fields are not files). */
export function onlyFields(fields: Record<string, FormValue>, allowed: string[]): void {
  const extra = Object.keys(fields).find((k) => !allowed.includes(k));
  if (extra !== undefined) throw errors.validation(`unknown field "${extra}"`);
}

/**
 * Every field but `reserved` (and `token`, which may come in the query) as a job-style file
 * map, base64 so bytes pass unchanged; names and sizes are checked by the job's file rules.
 */
export function fileFields(fields: Record<string, FormValue>, reserved: string[]): Record<string, { content: string; encoding: 'base64' }> {
  const files: Record<string, { content: string; encoding: 'base64' }> = {};
  for (const [k, v] of Object.entries(fields)) {
    if (reserved.includes(k) || k === 'token') continue;
    files[k] = { content: (Buffer.isBuffer(v) ? v : Buffer.from(v)).toString('base64'), encoding: 'base64' };
  }
  if (!files['main.sh']) throw errors.validation('field "main.sh" is required: it is what runs (`sh main.sh`)');
  return files;
}

const text = (v: FormValue | undefined) => (Buffer.isBuffer(v) ? v.toString('utf8') : v);

/** Picks `schema`'s properties out of the fields as text, converts numbers, and validates. */
export function checkFields<T extends TSchema & { properties: Record<string, TSchema> }>(schema: T, fields: Record<string, FormValue>): Static<T> {
  const picked: Record<string, unknown> = {};
  for (const key of Object.keys(schema.properties)) if (fields[key] !== undefined) picked[key] = text(fields[key]);
  const value = Value.Default(schema, Value.Convert(schema, picked));
  const first = [...Value.Errors(schema, value)][0];
  if (first) {
    const key = first.path.replace(/^\//, '').split('/')[0] || first.path;
    if (first.type === ValueErrorType.ObjectRequiredProperty || picked[key] === undefined) {
      throw errors.validation(`field "${key}" is required`);
    }
    throw errors.validation(`field "${key}": ${first.message}`);
  }
  return value as Static<T>;
}
