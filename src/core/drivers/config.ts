/**
 * The `drivers` section of the config: which drivers this server offers, which one runs
 * what names none, and each driver's own settings.
 */
import { Type, type Static } from '@sinclair/typebox';
import { DockerConfigSchema } from '../../drivers/docker/config.js';
import { ProcessConfigSchema } from '../../drivers/process/config.js';
import { SwarmConfigSchema } from '../../drivers/swarm/config.js';

export const DRIVER_NAMES = ['process', 'docker', 'swarm'] as const;
export type DriverName = (typeof DRIVER_NAMES)[number];
const DriverNameSchema = (opts: { default?: string } = {}) => Type.Union(DRIVER_NAMES.map((n) => Type.Literal(n)), opts);

export const DriversConfigSchema = Type.Object(
  {
    /** Runs instances and job runtimes that name no driver. */
    default: DriverNameSchema({ default: 'process' }),
    /** Drivers this server offers; the default is always among them. */
    enabled: Type.Array(DriverNameSchema(), { default: ['process'], uniqueItems: true }),
    process: ProcessConfigSchema,
    docker: DockerConfigSchema,
    swarm: SwarmConfigSchema,
  },
  { additionalProperties: false, default: {} },
);
export type DriversConfig = Static<typeof DriversConfigSchema>;
