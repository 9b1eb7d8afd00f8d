/**
 * The `sources` section of the config: which private address ranges downloads may reach,
 * and the caps on archive size, unpacked size, file count, download and unpack time. Lives
 * here so src/core/config.ts only needs one line for it.
 */
import { FormatRegistry, Type, type Static } from '@sinclair/typebox';
import { isCidr } from './address-policy.js';

const MiB = 1024 * 1024;

// "10.0.0.0/8", "::1/128" or a bare address; a bad entry stops startup naming the key.
FormatRegistry.Set('cidr', isCidr);

export const SourcesConfigSchema = Type.Object(
  {
    /** Ranges downloads may reach although loopback/private/link-local (e.g. "127.0.0.0/8"). */
    allowPrivate: Type.Array(Type.String({ format: 'cidr' }), { default: [] }),
    /** Largest source archive, downloaded or uploaded. */
    maxDownloadBytes: Type.Integer({ minimum: 1, default: 100 * MiB }),
    /** Largest total size of the files of an unpacked source. */
    maxUnpackedBytes: Type.Integer({ minimum: 1, default: 500 * MiB }),
    /** Most entries (files, directories, links) in one source. */
    maxFiles: Type.Integer({ minimum: 1, default: 10_000 }),
    /** Time limit of a whole download, redirects included. */
    downloadTimeoutSeconds: Type.Integer({ minimum: 1, default: 60 }),
    /** Time limit of unpacking an archive and reading its Procfile (after any download). */
    unpackTimeoutSeconds: Type.Integer({ minimum: 1, default: 300 }),
  },
  { additionalProperties: false, default: {} },
);
export type SourcesConfig = Static<typeof SourcesConfigSchema>;
