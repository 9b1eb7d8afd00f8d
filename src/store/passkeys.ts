/** Users' passkeys (WebAuthn credentials) and the sessions a passkey began (migration 955_passkeys). */
import type { Db } from './database.js';

export interface PasskeysTable {
  id: string;
  user_id: string;
  public_key: Uint8Array;
  counter: number;
  /** JSON array of the authenticator's transports (usb, internal, hybrid…) */
  transports: string;
  name: string;
  created_at: number;
  last_used_at: number | null;
}

export interface PasskeySessionsTable {
  session_hash: string;
}

export interface PasskeyRow {
  id: string;
  userId: string;
  publicKey: Uint8Array<ArrayBuffer>;
  counter: number;
  transports: string[];
  name: string;
  createdAt: number;
  lastUsedAt: number | null;
}

const toRow = (r: PasskeysTable): PasskeyRow => ({
  id: r.id,
  userId: r.user_id,
  publicKey: new Uint8Array(r.public_key),
  counter: Number(r.counter),
  transports: JSON.parse(r.transports) as string[],
  name: r.name,
  createdAt: Number(r.created_at),
  lastUsedAt: r.last_used_at === null ? null : Number(r.last_used_at),
});

export class PasskeyStore {
  constructor(private readonly db: Db) {}

  async insert(p: Omit<PasskeyRow, 'lastUsedAt'>): Promise<void> {
    await this.db
      .insertInto('passkeys')
      .values({
        id: p.id,
        user_id: p.userId,
        public_key: Buffer.from(p.publicKey),
        counter: p.counter,
        transports: JSON.stringify(p.transports),
        name: p.name,
        created_at: p.createdAt,
        last_used_at: null,
      })
      .execute();
  }

  async byId(id: string): Promise<PasskeyRow | undefined> {
    const r = await this.db.selectFrom('passkeys').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toRow(r);
  }

  async ofUser(userId: string): Promise<PasskeyRow[]> {
    const rows = await this.db.selectFrom('passkeys').selectAll().where('user_id', '=', userId).orderBy('created_at').execute();
    return rows.map(toRow);
  }

  async countOf(userId: string): Promise<number> {
    const r = await this.db.selectFrom('passkeys').select((eb) => eb.fn.countAll<number>().as('n')).where('user_id', '=', userId).executeTakeFirst();
    return Number(r?.n ?? 0);
  }

  /**
   * Records a use: the new signature counter, only if the stored one has not moved meanwhile
   * (two logins with one assertion race here; the loser gets false).
   */
  async used(id: string, previousCounter: number, counter: number, at: number): Promise<boolean> {
    const r = await this.db
      .updateTable('passkeys')
      .set({ counter, last_used_at: at })
      .where('id', '=', id)
      .where('counter', '=', previousCounter)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async rename(userId: string, id: string, name: string): Promise<boolean> {
    const r = await this.db.updateTable('passkeys').set({ name }).where('id', '=', id).where('user_id', '=', userId).executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async delete(userId: string, id: string): Promise<boolean> {
    const r = await this.db.deleteFrom('passkeys').where('id', '=', id).where('user_id', '=', userId).executeTakeFirst();
    return Number(r.numDeletedRows) === 1;
  }

  async deleteAllOf(userId: string): Promise<number> {
    const r = await this.db.deleteFrom('passkeys').where('user_id', '=', userId).executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  async markSession(sessionHash: string): Promise<void> {
    await this.db.insertInto('passkey_sessions').values({ session_hash: sessionHash }).onConflict((oc) => oc.doNothing()).execute();
  }

  async isPasskeySession(sessionHash: string): Promise<boolean> {
    return !!(await this.db.selectFrom('passkey_sessions').select('session_hash').where('session_hash', '=', sessionHash).executeTakeFirst());
  }
}
