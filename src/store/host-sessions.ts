/**
 * Logins to instance hosts: one-time codes and the host sessions they become (the proxy's
 * handshake, src/proxy/host-login.ts). Only hashes of codes and cookie values are kept.
 */
import type { Db } from './database.js';

export interface HostLoginCodesTable {
  code_hash: string;
  session_hash: string; // the main session that asked for it
  user_id: string;
  host_label: string; // {instance}--{owner}[--{port}]: the only host it can be used on
  next: string; // the path on that host to land on
  expires_at: number;
}

export interface HostSessionsTable {
  id_hash: string;
  session_hash: string; // the main session it belongs to: it ends with it
  user_id: string;
  host_label: string;
  created_at: number;
  expires_at: number;
}

export class HostSessionStore {
  constructor(private readonly db: Db) {}

  async insertCode(row: HostLoginCodesTable): Promise<void> {
    await this.db.insertInto('host_login_codes').values(row).execute();
  }

  /** Removes a code and returns it: a second use of the same code finds nothing. */
  async takeCode(codeHash: string): Promise<HostLoginCodesTable | undefined> {
    return this.db.deleteFrom('host_login_codes').where('code_hash', '=', codeHash).returningAll().executeTakeFirst();
  }

  async insertSession(row: HostSessionsTable): Promise<void> {
    await this.db.insertInto('host_sessions').values(row).execute();
  }

  /** A host session and the expiry of its main session (undefined when either is gone). */
  async session(idHash: string): Promise<(HostSessionsTable & { main_expires_at: number }) | undefined> {
    return this.db
      .selectFrom('host_sessions')
      .innerJoin('sessions', 'sessions.id_hash', 'host_sessions.session_hash')
      .selectAll('host_sessions')
      .select('sessions.expires_at as main_expires_at')
      .where('host_sessions.id_hash', '=', idHash)
      .executeTakeFirst();
  }

  async deleteSession(idHash: string): Promise<void> {
    await this.db.deleteFrom('host_sessions').where('id_hash', '=', idHash).execute();
  }

  /** Ends every host session of a main session (its logout). */
  async deleteForMainSession(sessionHash: string): Promise<void> {
    await this.db.deleteFrom('host_sessions').where('session_hash', '=', sessionHash).execute();
    await this.db.deleteFrom('host_login_codes').where('session_hash', '=', sessionHash).execute();
  }

  async deleteExpired(now: number): Promise<void> {
    await this.db.deleteFrom('host_login_codes').where('expires_at', '<', now).execute();
    await this.db.deleteFrom('host_sessions').where('expires_at', '<', now).execute();
  }
}
