/** The shared /proc scan: never older than the call, and shared by callers at the same moment. */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { allProcesses } from '../../src/drivers/process/proc.js';

describe('allProcesses', () => {
  it('sees a process started while an earlier scan was running', async () => {
    const earlier = allProcesses();
    const child = spawn('sleep', ['30']);
    try {
      const later = allProcesses();
      expect(later).not.toBe(earlier);
      expect((await later).some((p) => p.pid === child.pid)).toBe(true);
      await earlier;
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('serves every caller that arrives during a scan with one next scan', async () => {
    const first = allProcesses();
    const waiting = Array.from({ length: 20 }, () => allProcesses());
    expect(new Set(waiting).size).toBe(1);
    const [a, b] = await Promise.all([first, waiting[0]!]);
    expect(a.length).toBeGreaterThan(1);
    expect(b.some((p) => p.pid === process.pid)).toBe(true);
  });
});
