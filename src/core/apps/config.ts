/**
 * The `apps` section of the config: how long a new release may take to get ready, how long
 * old copies drain after a switch, how many release sources are kept per app.
 */
import { Type, type Static } from '@sinclair/typebox';

export const AppsConfigSchema = Type.Object(
  {
    /** A new release whose port does not answer (or health path is not 2xx/3xx) by then has failed. */
    readyTimeoutSeconds: Type.Integer({ minimum: 1, default: 60 }),
    /** After a switch, old copies keep serving in-flight requests this long before their stop signal. */
    drainSeconds: Type.Integer({ minimum: 0, default: 2 }),
    /** A Procfile `release:` command that runs longer fails the deploy. */
    releaseTimeoutSeconds: Type.Integer({ minimum: 1, default: 300 }),
    /** A process without a port counts as up once it has run this long without exiting. */
    settleSeconds: Type.Number({ minimum: 0, default: 1 }),
    /** Release sources kept per app (older releases cannot be rolled back to). */
    keepReleases: Type.Integer({ minimum: 1, default: 10 }),
  },
  { additionalProperties: false, default: {} },
);
export type AppsConfig = Static<typeof AppsConfigSchema>;
