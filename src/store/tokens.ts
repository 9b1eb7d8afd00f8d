import type { Scope, TokenInfo } from '../core/accounts/types.js';
import type { Db } from './database.js';
import type { TokensTable } from './schema.js';

const iso = (ms: number | null) => (ms == null ? null : new Date(Number(ms)).toISOString());

const toInfo = (r: TokensTable & { user_name: string }): TokenInfo => ({
  id: r.id,
  name: r.name,
  user: r.user_name,
  scopes: JSON.parse(r.scopes) as Scope[],
  createdAt: iso(r.created_at)!,
  expiresAt: iso(r.expires_at)!,
  revokedAt: iso(r.revoked_at),
  lastUsedAt: iso(r.last_used_at),
});

export class TokenStore {
  constructor(private readonly db: Db) {}

  async insert(t: { id: string; userId: string; name: string; scopes: Scope[]; expiresAt: number; credits?: number }): Promise<void> {
    await this.db
      .insertInto('tokens')
      .values({
        id: t.id,
        user_id: t.userId,
        name: t.name,
        scopes: JSON.stringify(t.scopes),
        created_at: Date.now(),
        expires_at: t.expiresAt,
        revoked_at: null,
        last_used_at: null,
        credits: t.credits ?? 0,
        credits_claimed_at: null,
      })
      .execute();
  }

  private select() {
    return this.db
      .selectFrom('tokens')
      .innerJoin('users', 'users.id', 'tokens.user_id')
      .selectAll('tokens')
      .select('users.name as user_name');
  }

  /** `pendingCredits`: credits for the owner not yet claimed (see LedgerStore.claimTokenCredits). */
  async byId(id: string): Promise<(TokenInfo & { userId: string; pendingCredits: number }) | undefined> {
    const r = await this.select().where('tokens.id', '=', id).executeTakeFirst();
    return r && { ...toInfo(r), userId: r.user_id, pendingCredits: r.credits_claimed_at == null ? Number(r.credits) : 0 };
  }

  async nameTaken(userId: string, name: string): Promise<boolean> {
    const r = await this.db
      .selectFrom('tokens')
      .select('id')
      .where('user_id', '=', userId)
      .where('name', '=', name)
      .executeTakeFirst();
    return !!r;
  }

  async listForUser(userId: string): Promise<TokenInfo[]> {
    const rows = await this.select().where('tokens.user_id', '=', userId).orderBy('tokens.created_at').execute();
    return rows.map(toInfo);
  }

  async revoke(id: string): Promise<void> {
    await this.db.updateTable('tokens').set({ revoked_at: Date.now() }).where('id', '=', id).where('revoked_at', 'is', null).execute();
  }

  /** Revokes every live token of the user, except `exceptId` (the one asking) when given. */
  async revokeForUser(userId: string, exceptId?: string): Promise<void> {
    let q = this.db.updateTable('tokens').set({ revoked_at: Date.now() }).where('user_id', '=', userId).where('revoked_at', 'is', null);
    if (exceptId !== undefined) q = q.where('id', '!=', exceptId);
    await q.execute();
  }

  async touch(id: string, at: number): Promise<void> {
    await this.db.updateTable('tokens').set({ last_used_at: at }).where('id', '=', id).execute();
  }
}
