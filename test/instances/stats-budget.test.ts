/**
 * The stats sampler with more running instances than its budget of samples per round: each
 * round reads only its share of them (in turn, so every one is sampled), while the server's
 * sums still count them all; and a ring of samples grows as samples come, keeping the
 * history it is configured to keep, oldest first.
 */
import { describe, expect, it, vi } from 'vitest';
import type { Workload } from '../../src/drivers/driver.js';
import type { InstanceEvent } from '../../src/core/instances/events.js';
import { InstanceStats, WATCH_MS } from '../../src/core/instances/stats.js';

const MiB = 1024 * 1024;

/** n running instances whose workloads count the stats reads they answer. */
function source(n: number) {
  const reads = new Map<string, number>();
  const ids = Array.from({ length: n }, (_, i) => `i${i}`);
  const workload = (id: string) =>
    ({
      stats: async () => {
        reads.set(id, (reads.get(id) ?? 0) + 1);
        return { memoryBytes: MiB, cpuSeconds: 0 };
      },
    }) as unknown as Workload;
  return {
    reads,
    ids,
    src: {
      list: async () => ids.map((id) => ({ id, ownerId: 'u', state: 'running' as const })),
      subscribe: (_fn: (e: InstanceEvent) => void) => () => {},
      workload,
    },
  };
}

describe('stats sampling budget', () => {
  it('samples all instances each round while they fit the budget', async () => {
    const { src, reads, ids } = source(10);
    const stats = new InstanceStats({ intervalSeconds: 1, keepSeconds: 60, maxSamplesPerSecond: 10 }, src);
    await stats.start();
    await stats.sample();
    stats.close();
    expect(ids.map((id) => reads.get(id))).toEqual(ids.map(() => 1));
  });

  it('reads only its budget per round, every instance in turn, and still sums them all', async () => {
    const { src, reads, ids } = source(10);
    const stats = new InstanceStats({ intervalSeconds: 1, keepSeconds: 60, maxSamplesPerSecond: 3 }, src);
    const ticks: { sampled: number; running: number; memory: number }[] = [];
    stats.subscribe((tick) => ticks.push({ sampled: tick.instances.length, running: tick.server.instances.running, memory: tick.server.instances.memoryBytes }));
    await stats.start();
    for (let round = 0; round < 4; round++) await stats.sample();
    stats.close();
    // 4 rounds of 3 = 12 reads: everyone once, two of them twice.
    expect(ticks.map((t) => t.sampled)).toEqual([3, 3, 3, 3]);
    expect(ids.every((id) => (reads.get(id) ?? 0) >= 1)).toBe(true);
    expect([...reads.values()].reduce((a, b) => a + b, 0)).toBe(12);
    // Once each was sampled, the server's sum holds all ten (the newest sample of each).
    expect(ticks[3]).toMatchObject({ running: 10, memory: 10 * MiB });
  });

  it('keeps keepSeconds of history in a ring that grows as samples come', async () => {
    const { src } = source(1);
    // 25 samples fit (25 s at 1 s); 40 rounds are taken: the oldest 15 are gone.
    const stats = new InstanceStats({ intervalSeconds: 1, keepSeconds: 25, maxSamplesPerSecond: 10 }, src);
    await stats.start();
    vi.useFakeTimers({ toFake: ['Date'] });
    let now = Date.now();
    try {
      for (let round = 0; round < 40; round++) {
        vi.setSystemTime((now += 1000));
        await stats.sample();
      }
    } finally {
      vi.useRealTimers();
      stats.close();
    }
    const kept = stats.of('i0');
    expect(kept).toHaveLength(25);
    expect(kept.map((s) => s.t)).toEqual(Array.from({ length: 25 }, (_, k) => now - (24 - k) * 1000));
  });

  it('samples an instance whose stats were asked for every round, ahead of the others in turn, for a while', async () => {
    const { src, reads, ids } = source(10);
    const stats = new InstanceStats({ intervalSeconds: 1, keepSeconds: 60, maxSamplesPerSecond: 3 }, src);
    await stats.start();
    vi.useFakeTimers({ toFake: ['Date'] });
    let now = Date.now();
    try {
      await stats.sample(); // i0..i2
      stats.of('i7'); // its page asks for its chart
      reads.clear();
      for (let round = 0; round < 5; round++) await stats.sample();
      // Every round: i7, and two of the nine others in turn (10 reads: each of them at least once).
      expect(reads.get('i7')).toBe(5);
      expect([...reads].filter(([id]) => id !== 'i7').reduce((n, [, k]) => n + k, 0)).toBe(10);
      expect(ids.filter((id) => id !== 'i7').every((id) => (reads.get(id) ?? 0) >= 1)).toBe(true);
      // Nobody asked again: after WATCH_MS it is one of the others again.
      vi.setSystemTime((now += WATCH_MS + 1));
      reads.clear();
      for (let round = 0; round < 10; round++) await stats.sample();
      expect(reads.get('i7')).toBe(3);
    } finally {
      vi.useRealTimers();
      stats.close();
    }
  });

  it('takes watched instances in turn when more are watched than the budget (a page asked for all)', async () => {
    const { src, reads, ids } = source(10);
    const stats = new InstanceStats({ intervalSeconds: 1, keepSeconds: 60, maxSamplesPerSecond: 3 }, src);
    await stats.start();
    await stats.sample();
    for (const id of ids) stats.of(id);
    reads.clear();
    for (let round = 0; round < 4; round++) await stats.sample();
    stats.close();
    expect([...reads.values()].reduce((a, b) => a + b, 0)).toBe(12);
    expect(ids.every((id) => (reads.get(id) ?? 0) >= 1)).toBe(true);
  });
});
