/**
 * smartmob-agent's documents, one TypeBox schema each (validation, types, OpenAPI). Field
 * names are the old agent's; `corral` is the one addition (the precise instance state).
 */
import { Type, type Static } from '@sinclair/typebox';
import { EnvSchema, SOURCE_URL } from '../../core/instances/spec.js';

/** app and node become the slug `app.node`, which is a URL path segment: URL-safe names only. */
const NamePart = Type.String({ pattern: '^[A-Za-z0-9_~-][A-Za-z0-9_.~-]{0,63}$', description: 'letters, digits, "_", "~", "-" and "."' });

export const CreateProcessSchema = Type.Object(
  {
    app: NamePart,
    node: NamePart,
    process_type: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$', description: 'a process type of the Procfile' }),
    source_url: Type.String({ pattern: SOURCE_URL, maxLength: 2048, description: 'tar, tar.gz or zip archive holding a Procfile' }),
    env: Type.Optional(EnvSchema),
  },
  { additionalProperties: false },
);
export type CreateProcess = Static<typeof CreateProcessSchema>;

export const DeleteProcessSchema = Type.Object({}, { additionalProperties: false });

export const SlugParams = Type.Object({ slug: Type.String({ minLength: 1, maxLength: 129 }) });

/** States an old client knows; `processing` is a process that runs (or restarts). */
export const OLD_STATES = [
  'pending',
  'downloading',
  'download failure',
  'unpacking',
  'processing',
  'no procfile',
  'unknown process type',
  'failed',
  'stopped',
] as const;
export type OldState = (typeof OLD_STATES)[number];

export const ProcessDocumentSchema = Type.Object({
  app: Type.String(),
  node: Type.String(),
  slug: Type.String(),
  state: Type.Union(OLD_STATES.map((s) => Type.Literal(s))),
  attach: Type.String({ description: 'ws:// or wss:// URL: one text frame per output line' }),
  details: Type.String(),
  status: Type.String(),
  delete: Type.String(),
  corral: Type.Object({
    instance: Type.String({ description: 'the instance id in corral' }),
    state: Type.String({ description: 'the precise instance state: running, backoff, exited…' }),
    restartCount: Type.Integer(),
    lastError: Type.Union([Type.String(), Type.Null()]),
  }),
});
export type ProcessDocument = Static<typeof ProcessDocumentSchema>;

export const IndexSchema = Type.Object({ list: Type.String(), create: Type.String() });
export const ListingSchema = Type.Object({ processes: Type.Array(ProcessDocumentSchema) });
