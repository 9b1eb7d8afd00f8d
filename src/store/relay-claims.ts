/** Relay channel claims: the user whose hosts may connect to a channel (see core/relay/claims.ts). */
import type { Db } from './database.js';

export interface RelayClaimsTable {
  channel: string;
  owner_id: string;
  claimed_at: number;
  used_at: number; // the owner's host last connected or left
}

export class RelayClaimStore {
  constructor(private readonly db: Db) {}

  /**
   * Claims `channel` for `ownerId` when it is unclaimed, already `ownerId`'s, or its claim was
   * last used before `now - lapseMs` (lapseMs 0: never lapses), in one statement, so two users
   * racing for it cannot both win. Returns who holds it afterwards.
   */
  async claim(channel: string, ownerId: string, now: number, lapseMs: number): Promise<string> {
    await this.db
      .insertInto('relay_claims')
      .values({ channel, owner_id: ownerId, claimed_at: now, used_at: now })
      .onConflict((oc) =>
        oc
          .column('channel')
          .doUpdateSet((eb) => ({
            owner_id: ownerId,
            used_at: now,
            claimed_at: eb.case().when('relay_claims.owner_id', '=', ownerId).then(eb.ref('relay_claims.claimed_at')).else(now).end(),
          }))
          .where((eb) =>
            eb.or([
              eb('relay_claims.owner_id', '=', ownerId),
              ...(lapseMs > 0 ? [eb('relay_claims.used_at', '<', now - lapseMs)] : []),
            ]),
          ),
      )
      .execute();
    return (await this.db.selectFrom('relay_claims').select('owner_id').where('channel', '=', channel).executeTakeFirstOrThrow()).owner_id;
  }

  /** Who holds a claim on `channel` used within `lapseMs`, or null. */
  async holder(channel: string, now: number, lapseMs: number): Promise<string | null> {
    let q = this.db.selectFrom('relay_claims').select('owner_id').where('channel', '=', channel);
    if (lapseMs > 0) q = q.where('used_at', '>=', now - lapseMs);
    return (await q.executeTakeFirst())?.owner_id ?? null;
  }

  async touch(channel: string, ownerId: string, now: number): Promise<void> {
    await this.db.updateTable('relay_claims').set({ used_at: now }).where('channel', '=', channel).where('owner_id', '=', ownerId).execute();
  }
}
