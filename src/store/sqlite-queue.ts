/**
 * Kysely's SQLite driver, with its one connection handed out first come, first served.
 * Kysely's own mutex wakes every waiter each time the connection is released and all but
 * one go back to waiting: with thousands of queries waiting at once (a server stopping 5,000
 * instances asks for each one's record together) that is quadratic — seconds of the
 * shutdown went to waking waiters. Here each release wakes exactly the next waiter.
 */
import { SqliteDialect, SqliteDriver, type DatabaseConnection, type Driver, type SqliteDialectConfig } from 'kysely';

class QueuedSqliteDriver extends SqliteDriver {
  private held = false;
  private readonly waiting: (() => void)[] = [];

  override async acquireConnection(): Promise<DatabaseConnection> {
    if (this.held) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.held = true;
    // Kysely's mutex is free now (every holder passes through here): no wait.
    return super.acquireConnection();
  }

  override async releaseConnection(): Promise<void> {
    await super.releaseConnection();
    // Handed straight to the next in line (still held): a newcomer queues behind it.
    const next = this.waiting.shift();
    if (next) next();
    else this.held = false;
  }
}

export class QueuedSqliteDialect extends SqliteDialect {
  constructor(private readonly config: SqliteDialectConfig) {
    super(config);
  }

  override createDriver(): Driver {
    return new QueuedSqliteDriver(this.config);
  }
}
