/** Which corral user an identity provider's subject signs in as (core/accounts/oidc.ts). */
import type { Db } from './database.js';

export interface ExternalIdentitiesTable {
  provider: string;
  subject: string;
  user_id: string;
  created_at: number;
}

export class ExternalIdentityStore {
  constructor(private readonly db: Db) {}

  async userIdFor(provider: string, subject: string): Promise<string | undefined> {
    const r = await this.db
      .selectFrom('external_identities')
      .select('user_id')
      .where('provider', '=', provider)
      .where('subject', '=', subject)
      .executeTakeFirst();
    return r?.user_id;
  }

  async link(provider: string, subject: string, userId: string): Promise<void> {
    await this.db.insertInto('external_identities').values({ provider, subject, user_id: userId, created_at: Date.now() }).execute();
  }
}
