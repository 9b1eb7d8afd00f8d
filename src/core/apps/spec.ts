/**
 * Apps: the payloads of the apps API, one TypeBox schema each, shared by the HTTP routes
 * (validation, OpenAPI) and core (types). An app is a Procfile source deployed as numbered
 * releases and run as a formation of copies (docs/apps.md).
 */
import { Type, type Static } from '@sinclair/typebox';
import { INSTANCE_NAME, LimitsSpec, RESTART_POLICIES, SignalName } from '../instances/spec.js';

export const AppName = Type.String({
  pattern: INSTANCE_NAME,
  description: 'lower-case letters, digits and "-", starting with a letter or digit; 1 to 63 characters',
});

const ProcessType = Type.String({ pattern: '^[A-Za-z0-9_-]{1,63}$' });
export const ENV_KEY = '^[A-Za-z_][A-Za-z0-9_]{0,127}$';
const EnvValue = Type.String({ maxLength: 65536 });

/** Copies per process type: `{ "web": 2, "worker": 1 }`. */
export const FormationSchema = Type.Record(ProcessType, Type.Integer({ minimum: 0, maximum: 100 }), {
  additionalProperties: false,
  maxProperties: 32,
});
export type Formation = Static<typeof FormationSchema>;

/** How a new release is judged ready before the proxy sends it requests. */
const HealthSpec = Type.Object(
  {
    path: Type.Optional(Type.String({ pattern: '^/[\\x21-\\x7e]*$', maxLength: 1024, description: 'HTTP GET this path; a 2xx or 3xx answer is ready (default: a TCP connect)' })),
    timeoutSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600, description: 'give up on a new release after this long (default apps.readyTimeoutSeconds)' })),
  },
  { additionalProperties: false },
);

/** What each copy runs with, beyond its process type and the config vars. Kept across releases. */
const settingsFields = {
  limits: Type.Optional(LimitsSpec),
  restart: Type.Optional(Type.Union(RESTART_POLICIES.map((p) => Type.Literal(p)))),
  stopSignal: Type.Optional(SignalName),
  stopGraceSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600 })),
  driver: Type.Optional(Type.String({ pattern: '^[a-z]{1,32}$' })),
  image: Type.Optional(Type.String({ pattern: '^[a-zA-Z0-9][a-zA-Z0-9_.:/@-]{0,511}$' })),
  health: Type.Optional(HealthSpec),
  drainSeconds: Type.Optional(
    Type.Integer({ minimum: 0, maximum: 3600, description: 'after a switch, the old copies finish in-flight requests this long before they stop (default apps.drainSeconds)' }),
  ),
};
export const AppSettingsSchema = Type.Object(settingsFields, { additionalProperties: false });
export type AppSettings = Static<typeof AppSettingsSchema>;

/** The `options` part of a deploy (multipart, beside the `archive` file). */
export const DeployOptionsSchema = Type.Object(
  {
    description: Type.Optional(Type.String({ maxLength: 500 })),
    /** First deploy only: which process type runs (default web, else the Procfile's first). */
    process: Type.Optional(ProcessType),
    /** Config vars set by this deploy (merged over the app's). */
    env: Type.Optional(Type.Record(Type.String({ pattern: ENV_KEY }), EnvValue, { maxProperties: 256, additionalProperties: false })),
    settings: Type.Optional(AppSettingsSchema),
  },
  { additionalProperties: false },
);
export type DeployOptions = Static<typeof DeployOptionsSchema>;

export const EnvPatchSchema = Type.Object(
  {
    set: Type.Optional(Type.Record(Type.String({ pattern: ENV_KEY }), EnvValue, { maxProperties: 256, additionalProperties: false })),
    unset: Type.Optional(Type.Array(Type.String({ pattern: ENV_KEY }), { maxItems: 256 })),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type EnvPatch = Static<typeof EnvPatchSchema>;

export const RollbackSchema = Type.Object(
  { version: Type.Optional(Type.Integer({ minimum: 1, description: 'the release to go back to (default: the one before the current)' })) },
  { additionalProperties: false },
);

export const RELEASE_STATUSES = ['pending', 'releasing', 'starting', 'active', 'superseded', 'failed'] as const;
export type ReleaseStatus = (typeof RELEASE_STATUSES)[number];

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);

export const ReleaseSchema = Type.Object({
  version: Type.Integer(),
  status: Type.Union(RELEASE_STATUSES.map((s) => Type.Literal(s))),
  description: Type.String(),
  createdBy: Type.String(),
  createdAt: Type.String({ format: 'date-time' }),
  finishedAt: Nullable(Type.String({ format: 'date-time' })),
  processTypes: Type.Array(Type.String()),
  /** Config var names (values only in GET …/env). */
  configVars: Type.Array(Type.String()),
  /** Whether the source is still kept (rollback needs it). */
  sourceKept: Type.Boolean(),
  error: Nullable(Type.String()),
  /** The failing copy's last log lines, when the release failed. */
  logs: Type.Array(Type.String()),
});
export type Release = Static<typeof ReleaseSchema>;

export const CopySchema = Type.Object({
  instance: Type.String({ description: 'the instance that runs this copy' }),
  id: Nullable(Type.String()),
  type: Type.String(),
  index: Type.Integer(),
  version: Type.Integer(),
  role: Type.String({ description: 'active, new (a switch is starting it), draining (a switch is stopping it), release (the release phase)' }),
  state: Type.String(),
  ready: Type.Boolean({ description: 'in the proxy rotation (web copies)' }),
  restartCount: Type.Integer(),
  ports: Type.Array(Type.Object({ name: Type.String(), hostPort: Type.Integer() })),
});
export type Copy = Static<typeof CopySchema>;

export const SwitchSchema = Type.Object({
  version: Type.Integer(),
  phase: Type.String({ description: 'release (the release phase runs), starting (new copies start), draining (old copies finish)' }),
  startedAt: Type.String({ format: 'date-time' }),
});

export const AppSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  owner: Type.String(),
  url: Type.Union([Type.String(), Type.Null()], { description: 'where the proxy serves it (null when its or its owner\'s name cannot form a host name)' }),
  currentVersion: Type.Union([Type.Integer(), Type.Null()]),
  formation: FormationSchema,
  settings: AppSettingsSchema,
  configVars: Type.Array(Type.String(), { description: 'names only; values in GET …/env' }),
  copies: Type.Array(CopySchema),
  switch: Type.Union([SwitchSchema, Type.Null()]),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
});
export type App = Static<typeof AppSchema>;

export const DeployResultSchema = Type.Object({ app: AppSchema, release: ReleaseSchema });
export type DeployResult = Static<typeof DeployResultSchema>;
