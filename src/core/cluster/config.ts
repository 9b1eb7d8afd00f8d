/**
 * How corral is spread over processes and machines: the role this process plays, where the
 * proxy role finds its manager, and how long a manager's lease on an instance lasts. Lives
 * here so src/core/config.ts only needs a line for it.
 */
import { Type, type Static } from '@sinclair/typebox';

export const ROLES = ['all', 'proxy', 'manager'] as const;
export type Role = (typeof ROLES)[number];

export const RoleSchema = Type.Union(
  ROLES.map((r) => Type.Literal(r)),
  {
    default: 'all',
    description: 'all: everything in one process; proxy: login, dashboard and proxy only (unprivileged); manager: API and drivers',
  },
);

export const DatabaseUrlSchema = Type.Optional(
  Type.String({ pattern: '^postgres(ql)?://', secret: true, description: 'PostgreSQL instead of SQLite in the data directory' }),
);

export const ClusterConfigSchema = Type.Object(
  {
    managerUrl: Type.Optional(
      Type.String({
        pattern: '^(http://|unix:/)',
        description: "role proxy: the manager's address, http://host:port or unix:/path/to/socket",
      }),
    ),
    internalSecret: Type.Optional(
      Type.String({ minLength: 16, secret: true, description: 'shared by proxy and manager: authenticates the proxy to the manager' }),
    ),
    socket: Type.Optional(Type.String({ description: 'listen on this unix socket instead of host:port (mode 0660)' })),
    managerTimeoutSeconds: Type.Number({
      exclusiveMinimum: 0,
      default: 10,
      description:
        "role proxy: how long to wait for the manager's answer (its response headers) before 504 manager_timeout; a frozen manager never hangs the proxy",
    }),
    leaseSeconds: Type.Number({
      exclusiveMinimum: 0,
      default: 15,
      description: 'managers sharing a PostgreSQL database: an instance whose manager has not renewed its lease this long is taken over',
    }),
  },
  { additionalProperties: false, default: {} },
);

export type ClusterConfig = Static<typeof ClusterConfigSchema>;
