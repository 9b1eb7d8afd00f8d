/** The store: the only module that writes SQL. One object holding every table's repository. */
import { sql } from 'kysely';
import { openDatabase, probeWrite, type Db } from './database.js';
import { AppStore } from './apps.js';
import { InstanceStore } from './instances.js';
import { JobStore } from './jobs.js';
import { LeaseStore } from './leases.js';
import { LedgerStore } from './ledger.js';
import { LoginThrottleStore } from './login-throttle.js';
import { CeremonyStore } from './ceremonies.js';
import { QuotaStore } from './quotas.js';
import { RelayClaimStore } from './relay-claims.js';
import { ProxyStore } from './proxy.js';
import { SessionStore } from './sessions.js';
import { SmartmobStore } from './smartmob.js';
import { TokenStore } from './tokens.js';
import { UserStore } from './users.js';

export class Store {
  readonly users: UserStore;
  readonly tokens: TokenStore;
  readonly sessions: SessionStore;
  readonly instances: InstanceStore;
  readonly proxy: ProxyStore;
  readonly jobs: JobStore;
  readonly smartmob: SmartmobStore;
  readonly leases: LeaseStore;
  readonly ledger: LedgerStore;
  readonly quotas: QuotaStore;
  readonly apps: AppStore;
  readonly loginThrottle: LoginThrottleStore;
  readonly ceremonies: CeremonyStore;
  readonly relayClaims: RelayClaimStore;

  private constructor(readonly db: Db) {
    this.users = new UserStore(db);
    this.tokens = new TokenStore(db);
    this.sessions = new SessionStore(db);
    this.instances = new InstanceStore(db);
    this.proxy = new ProxyStore(db);
    this.jobs = new JobStore(db);
    this.smartmob = new SmartmobStore(db);
    this.leases = new LeaseStore(db);
    this.ledger = new LedgerStore(db);
    this.quotas = new QuotaStore(db);
    this.apps = new AppStore(db);
    this.loginThrottle = new LoginThrottleStore(db);
    this.ceremonies = new CeremonyStore(db);
    this.relayClaims = new RelayClaimStore(db);
  }

  /** SQLite in `dataDir`, or PostgreSQL when `databaseUrl` is a postgres:// URL. */
  static async open(dataDir: string, databaseUrl?: string): Promise<Store> {
    return new Store(await openDatabase(dataDir, databaseUrl));
  }

  /** Throws when the database does not answer. */
  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }

  /** Throws when the database cannot write (e.g. its disk is full). */
  async probeWrite(): Promise<void> {
    await probeWrite(this.db);
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }
}
