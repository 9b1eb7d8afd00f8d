/**
 * Readiness: whether this server can do its work now. The database must answer and write, and
 * the data directory must take a new file: a full disk still answers reads, so only a write
 * tells. The answer is kept for `cacheMs`, so a load balancer polling /readyz costs one probe
 * per interval, and concurrent checks share one probe. It recovers by itself once space returns.
 */
import { randomUUID } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Store } from '../store/index.js';
import { isDiskFull } from './disk-full.js';

/** What the data directory's probe writes: room for a few database pages or log lines. */
const PROBE_BYTES = 64 * 1024;

export class Readiness {
  private last: { at: number; problem: string | null } | undefined;
  private probing: Promise<string | null> | undefined;

  constructor(
    private readonly dataDir: string,
    private readonly store: Store,
    private readonly cacheMs = 1000,
  ) {}

  /** Null when ready, else why not (for the 503's message). */
  async problem(): Promise<string | null> {
    if (this.last && Date.now() - this.last.at < this.cacheMs) return this.last.problem;
    this.probing ??= this.probe().finally(() => (this.probing = undefined));
    return this.probing;
  }

  private async probe(): Promise<string | null> {
    const problem = await this.store
      .ping()
      .then(
        () => this.store.probeWrite().then(() => null, (e: unknown) => cannotWrite('the database', e)),
        () => 'the database does not answer',
      )
      .then(async (p) => p ?? (await this.probeDataDir()));
    this.last = { at: Date.now(), problem };
    return problem;
  }

  /** A new file, not a rewritten one: rewriting frees its blocks first, so it fits on a full disk. */
  private async probeDataDir(): Promise<string | null> {
    const file = path.join(this.dataDir, `.write-probe-${randomUUID()}`);
    try {
      await writeFile(file, Buffer.alloc(PROBE_BYTES), { mode: 0o600 });
      return null;
    } catch (e) {
      return cannotWrite(`the data directory (${this.dataDir})`, e);
    } finally {
      await rm(file, { force: true });
    }
  }
}

const cannotWrite = (what: string, e: unknown) =>
  isDiskFull(e) ? `${what} cannot write: the disk is full` : `${what} cannot write: ${(e as Error).message}`;
