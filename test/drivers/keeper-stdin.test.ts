/**
 * A kept workload's stdin is opened by the manager at the first write, not at the spawn
 * (keeper-client.ts): thousands of workloads nobody writes to would each hold a socket and a
 * descriptor of the server. What must not change: stdin never reads EOF meanwhile, the
 * first write reaches it however late it comes, and after a take (a restart) too.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { childEnv } from '../../src/core/child-env.js';
import { KeeperClient } from '../../src/drivers/process/keeper-client.js';
import { sleep, standaloneKeeper, waitUntil } from './keeper-helpers.js';

/** This process's descriptors that point at `file`. */
function openOf(file: string): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === file) n++;
    } catch {
      /* closed meanwhile */
    }
  }
  return n;
}

describe('a kept workload’s stdin', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0)) await fn();
  }, 30_000);

  it('is opened at the first write: no descriptor until then, no EOF meanwhile, and the line arrives however late; after a take too', async () => {
    const { keeperDir, first } = await standaloneKeeper(cleanup);
    // Says "eof" if its stdin ever ends; echoes every line.
    const script = 'while IFS= read -r line; do echo "got $line"; done; echo eof; exec sleep 1000';
    const child = await first.spawn(['sh', '-c', script], { pipes: 3, detached: true, env: childEnv(), key: 'w' });
    const out: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    const text = () => Buffer.concat(out).toString();
    const fifo = path.join(keeperDir, 'run', 'w', 'fd0');
    expect(openOf(path.join(keeperDir, 'run', 'w', 'fd1'))).toBe(1);
    expect(openOf(fifo)).toBe(0);

    await sleep(1500);
    expect(text()).toBe('');
    child.stdin.write('late\n');
    await waitUntil(() => text().includes('got late'));
    expect(openOf(fifo)).toBe(1);

    // A restart: the next manager takes it, again without opening stdin until it writes.
    first.close();
    await waitUntil(() => openOf(fifo) === 0);
    const second = new KeeperClient(keeperDir);
    cleanup.unshift(async () => second.close());
    const taken = (await second.take('w'))!;
    const again: Buffer[] = [];
    taken.child.stdout.on('data', (c: Buffer) => again.push(c));
    expect(openOf(fifo)).toBe(0);
    taken.child.stdin.write('after take\n');
    await waitUntil(() => Buffer.concat(again).toString().includes('got after take'));
    expect(text() + Buffer.concat(again).toString()).not.toContain('eof');
    taken.child.kill('SIGKILL');
    expect((await taken.child.exited).signal).toBe('SIGKILL');
  });
});
