import type { Kysely } from 'kysely';

/**
 * An owner's instances by desired and observed state (the scale issue; 980–989): a quota check
 * on every create counts them from this index alone, instead of reading every row of the owner.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex('instances_owner_states').on('instances').columns(['owner_id', 'desired_state', 'observed_state']).execute();
}

