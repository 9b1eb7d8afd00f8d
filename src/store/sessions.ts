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

  async deleteForUser(userId: string): Promise<void> {
    await this.db.deleteFrom('sessions').where('user_id', '=', userId).execute();
  }

  async deleteExpired(now: number): Promise<void> {
    await this.db.deleteFrom('sessions').where('expires_at', '<', now).execute();
  }
}
