/**
 * The /etc a sandbox sees: a copy of the allowed entries (sandbox.ts ETC_ALLOWED), bound as
 * one read-only mount.
 *
 * Why a copy: binding ~30 entries one by one costs ~6 ms of kernel time per sandbox on
 * start and again on teardown (measured with bwrap directly: 14.1 ms → 8.0 ms per run), and
 * every job and instance pays it. One bind of a prepared dir costs nothing measurable.
 *
 * The copy is made in the background by `cp -aH` (a few hundred entries: ~1 s with Node's
 * cpSync, which would stall the event loop). Until it exists, current() is undefined and
 * sandboxes bind the entries one by one. It follows /etc: at most every CHECK_MS, current()
 * compares the entries' change times and makes a new copy when one changed (running
 * sandboxes keep the copy they bound). Top-level symlinks are followed (resolv.conf may
 * point into /run, which sandboxes do not see); symlinks inside directories are kept as
 * they are (ssl/certs → /usr/share).
 *
 *   sandboxArgv({ …, etc: etcViewAt(path.join(dataDir, 'sandbox-etc')).current() })
 */
import { randomUUID } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { childEnv } from '../../core/child-env.js';
import { ETC_ALLOWED } from './sandbox.js';
import { defaultSpawner } from './spawner.js';

/** How often a view checks whether /etc changed. */
export const CHECK_MS = 10_000;

/** ctime of every allowed entry (following symlinks): changes when any of them does. */
function stampOf(etc: string): string {
  return ETC_ALLOWED.map((entry) => {
    try {
      return String(statSync(path.join(etc, entry)).ctimeMs);
    } catch {
      return '-';
    }
  }).join(',');
}

export class EtcView {
  private dir: string | undefined;
  private stamp: string | undefined;
  private checkedAt = -Infinity;
  private building: Promise<void> | undefined;
  private cleared = false;

  constructor(
    private readonly root: string,
    private readonly onError: (err: unknown) => void = () => undefined,
    private readonly etc = '/etc',
    private readonly checkMs = CHECK_MS,
  ) {}

  /** The current copy; undefined while the first one is being made. */
  current(): string | undefined {
    const now = Date.now();
    if (!this.building && now - this.checkedAt >= this.checkMs) {
      this.checkedAt = now;
      const stamp = stampOf(this.etc);
      if (stamp !== this.stamp) {
        this.building = this.build(stamp)
          .catch(this.onError)
          .finally(() => (this.building = undefined));
      }
    }
    return this.dir;
  }

  /** Resolves once a copy as new as /etc exists (startup, tests). */
  async ready(): Promise<string | undefined> {
    this.current();
    await this.building;
    return this.dir;
  }

  private async build(stamp: string): Promise<void> {
    // The first copy of this process clears those left by earlier runs (their sandboxes died
    // with that server). Later copies are kept: a running instance's /etc is bound to its
    // copy, and deleting files in it would delete them under the instance too.
    if (!this.cleared) await rm(this.root, { recursive: true, force: true });
    this.cleared = true;
    const dir = path.join(this.root, randomUUID());
    await mkdir(dir, { recursive: true, mode: 0o755 });
    const present = ETC_ALLOWED.filter((entry) => existsSync(path.join(this.etc, entry)));
    // -a keeps modes, times and inner symlinks; -H follows the named entries' own links;
    // --parents recreates ssl/certs as ssl/certs.
    const cp = await defaultSpawner().spawn(['cp', '-aH', '--parents', '--', ...present, dir], { pipes: 3, env: childEnv(), cwd: this.etc });
    cp.stdin.end();
    cp.stdout.resume();
    let stderr = '';
    cp.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const { code } = await cp.closed;
    if (code !== 0) {
      await rm(dir, { recursive: true, force: true });
      throw new Error(`copying /etc for sandboxes failed (cp exited ${code}): ${stderr.trim()}`);
    }
    this.dir = dir;
    this.stamp = stamp;
  }
}

const views = new Map<string, EtcView>();

/** The one view kept under `root` (shared by the job runner and the process driver). */
export function etcViewAt(root: string, onError?: (err: unknown) => void): EtcView {
  let view = views.get(root);
  if (!view) {
    view = new EtcView(root, onError);
    views.set(root, view);
  }
  return view;
}
