/** The `drivers.docker` section of the config. */
import { Type, type Static } from '@sinclair/typebox';

export const DockerConfigSchema = Type.Object(
  {
    /** `unix:///path` or `tcp://host:port`; default DOCKER_HOST, then unix:///var/run/docker.sock. */
    host: Type.Optional(Type.String({ pattern: '^(unix|tcp)://' })),
    /**
     * Images users may name in an instance spec: exact references or patterns where `*`
     * matches any run of characters but `/` and `**` any run (`corral/*`, `python:3.*`,
     * `registry.example.org/**`). Images set by the admin
     * (defaultImage, runtime images) need no entry.
     */
    images: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
    /** Image of an instance on docker whose spec names none (Procfile apps, plain commands). */
    defaultImage: Type.Optional(Type.String({ minLength: 1 })),
    /** Pull a missing image from its registry (reports progress in the instance's log). */
    pull: Type.Boolean({ default: true }),
    /** User workloads run as inside containers (`uid:gid`); "" = the image's own. */
    user: Type.String({ default: '65534:65534' }),
    /** Bridge network of instances with network access; created when missing, with inter-container traffic off. */
    network: Type.String({ pattern: '^[a-zA-Z0-9][a-zA-Z0-9_.-]*$', default: 'corral' }),
    /** Pre-started job containers kept ready per job runtime image at least; 0 = none. */
    warmContainers: Type.Integer({ minimum: 0, maximum: 64, default: 2 }),
    /**
     * Job containers waiting for a job, pre-started and idle ones of all owners together, at
     * most: demand grows the pre-started pool up to it, and past it the idlest are removed.
     */
    maxIdleContainers: Type.Integer({ minimum: 0, maximum: 1024, default: 16 }),
    /** Jobs one job container runs (for one owner) before it is removed; 1 = a fresh container per job. */
    jobsPerContainer: Type.Integer({ minimum: 1, default: 100 }),
    /** A job container that waited this long for its owner's next job is removed. */
    containerIdleSeconds: Type.Number({ exclusiveMinimum: 0, default: 60 }),
    /** Size of the private /tmp (a tmpfs) of each container. */
    tmpBytes: Type.Integer({ minimum: 1024 * 1024, default: 64 * 1024 * 1024 }),
  },
  { additionalProperties: false, default: {} },
);
export type DockerConfig = Static<typeof DockerConfigSchema>;
