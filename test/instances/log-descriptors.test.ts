/**
 * Descriptors per instance: an instance's log file is open only while lines wait to be
 * written, so thousands of quiet instances do not hold thousands of the server's descriptors
 * (the hard limit here is 20,000); and what was written is all there, across reopenings.
 */
import { readdir, readFile, readlink, rm } from 'node:fs/promises';
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
});
