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
  },
  { additionalProperties: false, default: {} },
);
export type ProcessConfig = Static<typeof ProcessConfigSchema>;
