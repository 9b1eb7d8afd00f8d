import type { Kysely } from 'kysely';

/**
 * A job's steps beyond its run (jobs take 900–919): the compile step and a batch's cases, as
 * JSON text ({ compile?, cases? }, each with status, exit code, outputs, times, memory).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('jobs').addColumn('steps', 'text').execute();
}
