/** The shared /proc scan: never older than the call, and shared by callers at the same moment. */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { allProcesses, descendants } from '../../src/drivers/process/proc.js';

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

  it('keeps a bounded number of /proc files open however many processes there are', async () => {
    // 600 processes in one group: a scan that opened every stat file at once held ~600.
    const herd = spawn('sh', ['-c', 'for i in $(seq 600); do sleep 60 & done; wait'], { detached: true, stdio: 'ignore' });
    try {
      for (;;) {
        const procs = await allProcesses();
        if (procs.filter((p) => p.pgid === herd.pid).length > 600) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const open = () => readdirSync('/proc/self/fd').length;
      const before = open();
      let most = before;
      const scan = allProcesses();
      let done = false;
      void scan.then(() => (done = true));
      while (!done) {
        most = Math.max(most, open());
        await new Promise((r) => setImmediate(r));
      }
      expect((await scan).length).toBeGreaterThan(600);
      expect(most - before).toBeLessThanOrEqual(100);
    } finally {
      process.kill(-herd.pid!, 'SIGKILL');
    }
  });
});

describe('descendants', () => {
  it('finds every descendant, those in a new session too, for callers sharing one scan', async () => {
    const tree = (tag: string) =>
      spawn('sh', ['-c', `sleep 60${tag} & setsid sh -c 'sleep 61${tag} & wait' & wait`], { detached: true, stdio: 'ignore' });
    const a = tree('.1');
    const b = tree('.2');
    const cmdline = (pid: number) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
      } catch {
        return '';
      }
    };
    try {
      // Both trees have their three descendants (sleep, the setsid sh, its sleep).
      for (;;) {
        const [da, db] = await Promise.all([descendants(a.pid!), descendants(b.pid!)]);
        if (da.length >= 3 && db.length >= 3) {
          expect(da.map(cmdline).sort()).toEqual(['sh -c sleep 61.1 & wait', 'sleep 60.1', 'sleep 61.1']);
          expect(db.map(cmdline).sort()).toEqual(['sh -c sleep 61.2 & wait', 'sleep 60.2', 'sleep 61.2']);
          break;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      for (const c of [a, b]) {
        for (const pid of await descendants(c.pid!)) process.kill(pid, 'SIGKILL');
        process.kill(-c.pid!, 'SIGKILL');
      }
    }
  });
});
