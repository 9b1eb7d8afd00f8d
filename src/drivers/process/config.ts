/** The `drivers.process` section of the config. */
import { Type, type Static } from '@sinclair/typebox';

export const ProcessConfigSchema = Type.Object(
  {
    /**
     * `bwrap` (default): every instance and job runs in a bubblewrap sandbox, and without a
     * working bwrap the driver refuses them (503 driver_unavailable). `none`: they run
     * UNSANDBOXED as the server's user, able to read its files (signing key, database) —
     * an explicit, unsafe choice that `corral doctor` and every start report.
     */
    sandbox: Type.Union([Type.Literal('bwrap'), Type.Literal('none')], {
      default: 'bwrap',
      description: 'bwrap (refuse workloads without a working sandbox) or none (run them UNSANDBOXED: unsafe)',
    }),
    /** Path of the bwrap binary; default: `bwrap` on the server's PATH. */
    bwrap: Type.Optional(Type.String({ minLength: 1, description: 'path of bubblewrap (default: found on PATH)' })),
    /**
     * Every sandboxed workload has its own network namespace (network.ts). `none` (default):
     * nothing out of it but its forwarded ports coming in. `pasta`: outbound connections
     * through pasta, as from the host, but never to the host's loopback.
     */
    outbound: Type.Optional(
      Type.Union([Type.Literal('none'), Type.Literal('pasta')], {
        default: 'none',
        description: 'none (no outbound network) or pasta (outbound as from the host, never to its loopback); needs passt',
      }),
    ),
    /**
     * UNSAFE: the old shared network — workloads in the host's network namespace reach every
     * loopback service, corral's own port and each other's ports. For hosts without pasta;
     * reported at every start and by `corral doctor`.
     */
    hostNetwork: Type.Optional(Type.Boolean({ default: false, description: "share the host's network namespace (UNSAFE: reaches every loopback service)" })),
    /**
     * Workloads are children of a keeper process (DATA/keeper; keeper.ts) instead of the
     * server: they outlive a server crash, restart or upgrade and are re-adopted with their
     * logs; a SIGTERM of the server detaches them. On by default; false: they die with the
     * server, as before the keeper (docs/instances.md, "Outliving the manager").
     */
    keeper: Type.Optional(Type.Boolean({ default: true, description: 'workloads outlive the server, kept by a keeper process (DATA/keeper); false: they die with it' })),
    /** Path of pasta (Debian's passt package); default: `pasta` on the server's PATH. */
    pasta: Type.Optional(Type.String({ minLength: 1, description: 'path of pasta (default: found on PATH)' })),
  },
  { additionalProperties: false, default: {} },
);
export type ProcessConfig = Static<typeof ProcessConfigSchema>;
