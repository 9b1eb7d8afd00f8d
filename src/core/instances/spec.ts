/**
 * The instance spec and the instance document: one TypeBox schema per payload, shared by
 * the HTTP routes (validation, OpenAPI) and core (types).
 */
import { Type, type Static, type StringOptions } from '@sinclair/typebox';

/**
 * Text that reaches a process (argv, env, a shell line) can never hold a NUL byte: the kernel
 * would cut it there, or spawn fails. Such text is refused at the door (400 naming the field)
 * rather than accepted and failing at start. One pattern, shared by every schema of such text.
 */
export const NO_NUL = '^[^\\u0000]*$';
export const NulFreeString = (options: StringOptions = {}) => Type.String({ pattern: NO_NUL, ...options });

/** Environment variables: names as a shell takes them, values without NUL bytes. */
export const EnvSchema = Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]{0,127}$' }), NulFreeString({ maxLength: 65536 }), {
  maxProperties: 256,
  additionalProperties: false,
});

export const INSTANCE_NAME = '^[a-z0-9][a-z0-9-]{0,62}$';
export const InstanceName = Type.String({
  pattern: INSTANCE_NAME,
  description: 'lower-case letters, digits and "-", starting with a letter or digit; 1 to 63 characters',
});

export const RESTART_POLICIES = ['always', 'on-failure', 'never'] as const;
export type RestartPolicy = (typeof RESTART_POLICIES)[number];

export const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGKILL', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH', 'SIGCONT', 'SIGSTOP'] as const;
export const SignalName = Type.Union(SIGNALS.map((s) => Type.Literal(s)));

const PortSpec = Type.Object(
  {
    name: Type.String({ pattern: '^[a-z][a-z0-9_]{0,30}$', description: 'becomes PORT_<NAME> in the env' }),
    port: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 65535,
        description: 'where the app listens inside its sandbox (a daemon with a fixed port); default: the host port. PORT and PORT_<NAME> say it',
      }),
    ),
  },
  { additionalProperties: false },
);

export const LimitsSpec = Type.Object(
  {
    memoryBytes: Type.Optional(Type.Integer({ minimum: 4 * 1024 * 1024 })),
    cpus: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 256 })),
    pids: Type.Optional(Type.Integer({ minimum: 1 })),
    diskBytes: Type.Optional(Type.Integer({ minimum: 1024 * 1024 })),
  },
  { additionalProperties: false },
);

/** An http(s) URL, without NUL bytes (see NO_NUL). */
export const SOURCE_URL = '^https?://[^\\u0000]*$';

/** Where a Procfile app comes from; uploads are given by multipart, not in the JSON spec. */
const SourceUrl = Type.Object(
  { url: Type.String({ pattern: SOURCE_URL, maxLength: 2048, description: 'http(s) URL of a tar, tar.gz or zip archive' }) },
  { additionalProperties: false },
);

/** The fields a user sets; `name` and exactly one of `command`, `shell`, `source`. */
const specFields = {
  name: InstanceName,
  command: Type.Optional(Type.Array(NulFreeString({ maxLength: 65536 }), { minItems: 1, maxItems: 4096, description: 'argv' })),
  shell: Type.Optional(NulFreeString({ minLength: 1, maxLength: 65536, description: 'run with sh -c' })),
  source: Type.Optional(SourceUrl),
  process: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$', description: 'Procfile process type, default "web"' })),
  env: Type.Optional(EnvSchema),
  ports: Type.Optional(Type.Array(PortSpec, { maxItems: 16 })),
  limits: Type.Optional(LimitsSpec),
  restart: Type.Optional(Type.Union(RESTART_POLICIES.map((p) => Type.Literal(p)), { description: 'default "always"' })),
  stopSignal: Type.Optional(SignalName),
  stopGraceSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600 })),
  driver: Type.Optional(Type.String({ pattern: '^[a-z]{1,32}$', description: 'driver that runs it (docs/docker.md); default: the server\'s' })),
  image: Type.Optional(
    Type.String({ pattern: '^[a-zA-Z0-9][a-zA-Z0-9_.:/@-]{0,511}$', description: 'container image (container drivers); must be on the allow-list' }),
  ),
  /** Credits (docs/credits.md): default from config; only admins may lower or turn it off. */
  metered: Type.Optional(Type.Boolean({ description: 'charge credits while running (default: credits.instances.metered)' })),
  creditsPerSecond: Type.Optional(Type.Number({ minimum: 0, maximum: 1_000_000, description: 'default: credits.instances.creditsPerSecond' })),
};

export const InstanceSpecSchema = Type.Object(specFields, { additionalProperties: false });
export type InstanceSpecInput = Static<typeof InstanceSpecSchema>;

/** PATCH: any field but the source (a new source means a new instance). */
export const InstancePatchSchema = Type.Partial(
  Type.Object(
    (({ source: _s, ...rest }) => rest)(specFields),
    { additionalProperties: false },
  ),
);
export type InstancePatch = Static<typeof InstancePatchSchema>;

/** The spec as stored: defaults filled in, and an uploaded archive recorded by its name. */
export interface InstanceSpec extends Omit<InstanceSpecInput, 'source'> {
  source?: { url: string } | { uploaded: string };
  restart: RestartPolicy;
  stopSignal: (typeof SIGNALS)[number];
  stopGraceSeconds: number;
  env: Record<string, string>;
  ports: { name: string; port?: number }[];
}

export const STATES = [
  'pending',
  'downloading',
  'unpacking',
  'starting',
  'running',
  'backoff',
  'exited',
  'failed',
  'stopped',
] as const;
export type InstanceState = (typeof STATES)[number];

/**
 * What the API reports: the stored states, plus `stale` — the store says a workload is active
 * but no manager holds the instance's lease any more, so nobody watches it (managers sharing
 * a database; docs/deployment.md). Never stored: a manager that takes the instance over
 * adopts or restarts it and writes a real state.
 */
export const REPORTED_STATES = [...STATES, 'stale'] as const;

export const DESIRED_STATES = ['running', 'stopped', 'deleted'] as const;
export type DesiredState = (typeof DESIRED_STATES)[number];

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);

export const InstanceSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  owner: Type.String({ description: 'name of the owning user' }),
  spec: Type.Object(
    {
      ...specFields,
      source: Type.Optional(Type.Union([SourceUrl, Type.Object({ uploaded: Type.String() })])),
    },
  ),
  desiredState: Type.Union(DESIRED_STATES.map((s) => Type.Literal(s))),
  state: Type.Union(REPORTED_STATES.map((s) => Type.Literal(s))),
  holder: Type.Optional(
    Type.Union([
      Type.Object({
        managerId: Type.String({ description: "the manager supervising it (its data directory's manager-id)" }),
        leaseExpiresAt: Type.String({ format: 'date-time', description: 'when its lease runs (or ran) out unless that manager renews it' }),
      }),
      Type.Null(),
    ], { description: 'managers sharing a database: who holds (or last held) the lease (null: nobody); absent with a single manager' }),
  ),
  generation: Type.Integer(),
  restartCount: Type.Integer(),
  exitCode: Type.Union([Type.Integer(), Type.Null()]),
  exitSignal: Nullable(Type.String()),
  lastError: Nullable(Type.String()),
  ports: Type.Array(Type.Object({ name: Type.String(), hostPort: Type.Integer() })),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
  startedAt: Nullable(Type.String({ format: 'date-time' })),
});
export type Instance = Static<typeof InstanceSchema>;
