/**
 * Descriptors per instance: an instance's log file is open only while lines wait to be
 * written, so thousands of quiet instances do not hold thousands of the server's descriptors
 * (the hard limit here is 20,000); and what was written is all there, across reopenings.
 */
import { mkdir, readdir, readFile, readlink, rm } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { InstanceLog } from '../../src/core/instances/logs.js';
import { tempDir } from '../helpers/server.js';

const cfg = { fileBytes: 1 << 20, keepFiles: 1, memoryLines: 100, memoryBytes: 1 << 20, maxLineBytes: 1000, pendingWriteBytes: 1 << 20, clientBufferBytes: 1 << 20 };

/** This process's descriptors open on `file`. */
async function openOn(file: string): Promise<number> {
  let n = 0;
  for (const fd of await readdir('/proc/self/fd')) if ((await readlink(`/proc/self/fd/${fd}`).catch(() => '')) === file) n++;
  return n;
}

describe('log descriptors', () => {
  it('closes the log file once everything is written, and appends to it again later', async () => {
    const dir = await tempDir('corral-log-fd-');
    const log = new InstanceLog(dir, cfg);
    const file = path.join(dir, 'output.log');
    log.note('started');
    await log.flush();
    expect(await openOn(file)).toBe(0);
    log.append('stdout', Buffer.from('one\ntwo\n'));
    await log.flush();
    expect(await openOn(file)).toBe(0);
    const lines = (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l).l);
    expect(lines).toEqual(['started', 'one', 'two']);
    await log.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('holds at most 256 log files open at once, however many instances are writing, and loses no line', async () => {
    const root = await tempDir('corral-log-many-');
    const n = 300;
    const logs = await Promise.all(Array.from({ length: n }, async (_, i) => {
      const dir = path.join(root, String(i));
      await mkdir(dir);
      return new InstanceLog(dir, cfg);
    }));
    // Each writes once: its file then stays open a moment for more (not closed at once).
    logs.forEach((log, i) => log.append('stdout', Buffer.from(`line ${i}\n`)));
    await new Promise((r) => setTimeout(r, 100));
    const outputs = (await Promise.all((await readdir('/proc/self/fd')).map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')))).filter((l) => l.startsWith(root));
    expect(outputs.length).toBeGreaterThan(0);
    expect(outputs.length).toBeLessThanOrEqual(256);
    await Promise.all(logs.map((log) => log.flush()));
    for (let i = 0; i < n; i += 37) expect((await readFile(path.join(root, String(i), 'output.log'), 'utf8')).trim()).toContain(`"l":"line ${i}"`);
    await Promise.all(logs.map((log) => log.close()));
    await rm(root, { recursive: true, force: true });
  });
});
