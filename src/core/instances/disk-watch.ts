/**
 * The disk cap of an instance's data dir (`limits.diskBytes`).
 *
 * No driver here can enforce it in the kernel cheaply: ext4 project quotas need the file
 * system set up for them, a loop-mounted image per instance needs root and a fixed size,
 * and tmpfs would not survive a restart. So corral measures: every `diskCheckSeconds` it
 * walks the data dir of each instance that should run (allocated blocks, hard links once,
 * symlinks not followed) and stops an instance over its cap, saying so in its last error.
 * Its files are kept, so the owner can shrink them and start it again. So it is a soft
 * limit: a workload can overshoot by what it writes in one interval, at disk speed (3.9 GB
 * in 3.7 s measured here, docs/isolation.md); `corral doctor` reports it as such.
 */
import type { Dirent } from 'node:fs';
import { lstatSync, readdirSync, type Stats } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Store } from '../../store/index.js';
import type { InstancesConfig } from './config.js';
import { instanceDirs } from './dirs.js';
import type { InstanceSpec } from './spec.js';
import type { InstanceService } from './service.js';

/** File system calls a disk walk makes before it lets the event loop run. */
const WALK_CHUNK = 128;
let walkCalls = 0;

/**
 * Bytes allocated under `dir`; stops counting once past `stopAbove` (the answer is then > it).
 * Synchronous calls, a chunk at a time: a check of 5,000 data dirs every 30 s through the
 * thread pool (a promise and a round trip per directory and per file) was most of the
 * server's periodic work; the metadata is in the kernel's cache and each call takes microseconds.
 */
export async function diskUsage(dir: string, stopAbove = Infinity): Promise<number> {
  let total = 0;
  const seen = new Set<string>();
  const queue = [dir];
  const step = async () => {
    if (++walkCalls % WALK_CHUNK === 0) await new Promise((resolve) => setImmediate(resolve));
  };
  while (queue.length && total <= stopAbove) {
    const current = queue.pop()!;
    let entries: Dirent[];
    try {
      await step();
      entries = readdirSync(current, { withFileTypes: true });
    } catch {
      continue; // gone meanwhile, or not readable
    }
    for (const e of entries) {
      const full = path.join(current, e.name);
      await step();
      let st: Stats;
      try {
        st = lstatSync(full);
      } catch {
        continue;
      }
      if (st.nlink > 1 && !st.isDirectory()) {
        const key = `${st.dev}:${st.ino}`;
        if (seen.has(key)) continue;
        seen.add(key);
      }
      total += st.blocks * 512;
      if (e.isDirectory()) queue.push(full);
    }
  }
  return total;
}

export const DISK_LIMIT_EXCEEDED = 'disk limit exceeded';

export class DiskWatch {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<string[]> | undefined;

  constructor(
    private readonly store: Store,
    private readonly service: InstanceService,
    private readonly config: InstancesConfig,
    private readonly dataRoot: string,
    private readonly log: Logger,
  ) {}

  start(): void {
    if (!this.config.diskCheckSeconds) return;
    this.timer = setInterval(() => void this.check(), this.config.diskCheckSeconds * 1000);
    this.timer.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One pass; resolves with the ids it stopped. A pass still going is joined, not doubled. */
  check(): Promise<string[]> {
    this.running ??= this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  private async pass(): Promise<string[]> {
    const stopped: string[] = [];
    for (const r of await this.store.instances.specs('running')) {
      // Most specs set no disk limit of their own: only those that name one are parsed.
      const own = r.specJson.includes('"diskBytes"') ? (JSON.parse(r.specJson) as InstanceSpec).limits?.diskBytes : undefined;
      const cap = own ?? this.config.defaultLimits.diskBytes;
      const used = await diskUsage(instanceDirs(this.dataRoot, r.id).data, cap);
      if (used <= cap) continue;
      const owner = await this.store.users.byId(r.ownerId);
      if (!owner) continue;
      this.log.info({ instance: r.id, used, cap }, 'stopping an instance over its disk limit');
      try {
        await this.store.instances.updateObserved(r.id, {
          lastError: `${DISK_LIMIT_EXCEEDED}: its data dir holds more than ${cap} bytes; its files are kept`,
        });
        await this.service.stop(owner, r.id);
        stopped.push(r.id);
      } catch (e) {
        this.log.error({ err: e, instance: r.id }, 'stopping an instance over its disk limit failed');
      }
    }
    return stopped;
  }
}
