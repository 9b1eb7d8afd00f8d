import type { Db } from './database.js';
import type { SessionsTable } from './schema.js';

export class SessionStore {
  constructor(private readonly db: Db) {}

  async insert(s: SessionsTable): Promise<void> {
    await this.db.insertInto('sessions').values(s).execute();
  }

  async byHash(idHash: string): Promise<SessionsTable | undefined> {
    return this.db.selectFrom('sessions').selectAll().where('id_hash', '=', idHash).executeTakeFirst();
  }

  async extend(idHash: string, expiresAt: number): Promise<void> {
    await this.db.updateTable('sessions').set({ expires_at: expiresAt }).where('id_hash', '=', idHash).execute();
  }

  async delete(idHash: string): Promise<void> {
    await this.db.deleteFrom('sessions').where('id_hash', '=', idHash).execute();
  }

  /** Ends every session of the user, except `exceptHash` (the one asking) when given. */
  async deleteForUser(userId: string, exceptHash?: string): Promise<void> {
    let q = this.db.deleteFrom('sessions').where('user_id', '=', userId);
    if (exceptHash !== undefined) q = q.where('id_hash', '!=', exceptHash);
    await q.execute();
  }

  async deleteExpired(now: number): Promise<void> {
    await this.db.deleteFrom('sessions').where('expires_at', '<', now).execute();
  }
}
