/**
 * Sign-in ceremonies waiting for their second half (src/core/accounts/ceremonies.ts): a value
 * under a key until it expires, taken at most once. `take` is one DELETE … RETURNING, so on
 * several managers sharing PostgreSQL only one of two concurrent takes gets the value.
 */
import type { Db } from './database.js';

export interface CeremoniesTable {
  key: string;
  value: string;
  expires_at: number;
}

export class CeremonyStore {
  constructor(private readonly db: Db) {}

  /** Sets `key` (replacing what it held). */
  async put(key: string, value: string, expiresAt: number): Promise<void> {
    await this.db
      .insertInto('ceremonies')
      .values({ key, value, expires_at: expiresAt })
      .onConflict((oc) => oc.column('key').doUpdateSet({ value, expires_at: expiresAt }))
      .execute();
  }

  /** The value under `key`, removed; undefined when there is none or it expired. */
  async take(key: string, now: number): Promise<string | undefined> {
    const row = await this.db.deleteFrom('ceremonies').where('key', '=', key).returning(['value', 'expires_at']).executeTakeFirst();
    return row && Number(row.expires_at) > now ? row.value : undefined;
  }

  /** Removes expired ceremonies, then the soonest to expire beyond `keep`. */
  async sweep(now: number, keep: number): Promise<void> {
    await this.db.deleteFrom('ceremonies').where('expires_at', '<=', now).execute();
    const { n } = await this.db.selectFrom('ceremonies').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    if (Number(n) <= keep) return;
    const cut = await this.db.selectFrom('ceremonies').select('expires_at').orderBy('expires_at', 'desc').offset(keep).limit(1).executeTakeFirst();
    if (cut) await this.db.deleteFrom('ceremonies').where('expires_at', '<=', Number(cut.expires_at)).execute();
  }
}
