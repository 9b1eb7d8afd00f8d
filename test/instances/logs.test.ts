/**
 * Log storage and flow control: rotation keeps N files of bounded size; a flooding child
 * finishes even while one attached client reads nothing, the other client gets everything,
 * the stalled one gets a "dropped" marker, and the server's memory does not follow the flood.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { forwardBoundedBatches, InstanceLog, type LineBatch } from '../../src/core/instances/logs.js';
import { startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import { createInstance, openStream, waitForState } from './helpers.js';

describe('log files', () => {
  it('rotates at the size cap and keeps N older files; history reads across them', async () => {
    const dir = await tempDir('corral-logs-');
    const log = new InstanceLog(dir, {
      fileBytes: 4096,
      keepFiles: 2,
      memoryLines: 10,
      memoryBytes: 1 << 20,
      maxLineBytes: 100,
      pendingWriteBytes: 1 << 20,
      clientBufferBytes: 1 << 20,
    });
    for (let i = 0; i < 500; i++) {
      log.append('stdout', Buffer.from(`line ${i}\n`));
      if (i % 50 === 0) await log.flush();
    }
    log.append('stderr', Buffer.from(`${'y'.repeat(250)}\npartial`));
    log.endOfOutput();
    await log.flush();
    expect((await readdir(dir)).sort()).toEqual(['output.log', 'output.log.1', 'output.log.2']);
    for (const f of await readdir(dir)) expect((await stat(path.join(dir, f))).size).toBeLessThanOrEqual(4096 + 200);
    const last = await log.history(6);
    expect(last.map((e) => e.line)).toEqual(['line 498', 'line 499', 'y'.repeat(100), 'y'.repeat(100), 'y'.repeat(50), 'partial']);
    expect(last[2]!.stream).toBe('stderr');
    // Older lines were rotated away, the memory ring holds only the last 10.
    expect((await log.history()).some((e) => e.line === 'line 0')).toBe(false);
    expect(log.recent()).toHaveLength(10);
    await log.close();
  });

  it('after a restart, the memory tail starts with the earlier run\'s last lines, then the new ones', async () => {
    const dir = await tempDir('corral-logs-');
    const cfg = { fileBytes: 1 << 20, keepFiles: 1, memoryLines: 5, memoryBytes: 1 << 20, maxLineBytes: 100, pendingWriteBytes: 1 << 20, clientBufferBytes: 1 << 20 };
    const before = new InstanceLog(dir, cfg);
    for (let i = 0; i < 20; i++) before.append('stdout', Buffer.from(`old ${i}\n`));
    await before.close();
    const after = new InstanceLog(dir, cfg);
    after.append('stderr', Buffer.from('new 0\nnew 1\n'));
    expect(after.recent().map((e) => e.line)).toEqual(['old 17', 'old 18', 'old 19', 'new 0', 'new 1']);
    expect(after.recent(2).map((e) => e.stream)).toEqual(['stderr', 'stderr']);
    await after.close();
  });
});

describe('lines read together', () => {
  const cfg = { fileBytes: 1 << 24, keepFiles: 1, memoryLines: 10_000, memoryBytes: 1 << 24, maxLineBytes: 100, pendingWriteBytes: 1 << 24, clientBufferBytes: 1 << 20 };

  it('every line reaches each subscriber, the batches, the tail and the file, in order: across chunks, long, escaped, not UTF-8', async () => {
    const dir = await tempDir('corral-logs-');
    const log = new InstanceLog(dir, cfg);
    const lines: string[] = [];
    const batches: LineBatch[] = [];
    log.subscribe((e) => lines.push(e.line));
    log.subscribeBatches((b) => batches.push(b));
    const plain = Array.from({ length: 300 }, (_, i) => `line ${i} ${'p'.repeat(i % 90)}`);
    const long = 'é'.repeat(120); // 240 bytes: pieces of 50, 50 and 20 characters (100 bytes at most, never half a character)
    const escaped = 'a "quoted"\tab	here';
    const input = Buffer.from([...plain.slice(0, 150), long, escaped, ...plain.slice(150), 'unfinished'].join('\n'));
    // Chunks of odd sizes: lines and characters cross their boundaries.
    for (let at = 0, size = 1; at < input.length; at += size, size = (size * 7 + 3) % 997) log.append('stdout', input.subarray(at, at + size));
    log.append('stderr', Buffer.from([0x61, 0xff, 0x62, 0x0a])); // not UTF-8: a replacement character
    log.endOfOutput();
    await log.flush();
    const expected = [...plain.slice(0, 150), 'é'.repeat(50), 'é'.repeat(50), 'é'.repeat(20), escaped, ...plain.slice(150), 'a\ufffdb', 'unfinished'];
    // The stderr line comes where it was read: before the unfinished stdout line, ended last.
    expect(lines).toEqual(expected);
    expect(batches.flatMap((b) => b.bytes.toString().split('\n'))).toEqual(expected);
    expect(batches.flatMap((b) => b.entries.map((e) => e.line))).toEqual(expected);
    expect(log.recent().map((e) => e.line)).toEqual(expected);
    expect((await log.history()).map((e) => e.line)).toEqual(expected);
    const records = (await readFile(path.join(dir, 'output.log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { s: string; l: string });
    expect(records.map((r) => r.l)).toEqual(expected);
    expect(records.at(-2)!.s).toBe('stderr');
    await log.close();
  });

  it('a firehose\'s records, built in blocks reused once written, reach the file whole and in order', async () => {
    const dir = await tempDir('corral-logs-');
    const log = new InstanceLog(dir, { ...cfg, maxLineBytes: 16 * 1024 });
    const lines = Array.from({ length: 20_000 }, (_, i) => `${i} ${'r'.repeat(i % 500)}`);
    const input = Buffer.from(lines.join('\n') + '\n');
    // Reads of 9 to 70 KiB (records of a read from 8 KiB up go to blocks), some turns apart
    // so that writes are on their way while more records are built.
    for (let at = 0, i = 0; at < input.length; i++) {
      const size = 9 * 1024 + ((i * 7919) % (61 * 1024));
      log.append('stdout', input.subarray(at, at + size));
      at += size;
      if (i % 3 === 0) await new Promise((r) => setImmediate(r));
    }
    await log.flush();
    const records = (await readFile(path.join(dir, 'output.log'), 'utf8')).trim().split('\n').map((l) => (JSON.parse(l) as { l: string }).l);
    expect(records.length).toBe(lines.length);
    expect(records.every((l, i) => l === lines[i])).toBe(true);
    await log.close();
  });

  it('a batch goes to a slow client whole or not at all, and the next one that goes says how many lines were lost', () => {
    let behind = 0;
    const sent: string[] = [];
    const forward = forwardBoundedBatches({ send: (b) => sent.push(b.toString()), buffered: () => behind }, 1000);
    const batch = (...l: string[]): LineBatch => ({ t: 1, stream: 'stdout', count: l.length, entries: l.map((line) => ({ t: 1, stream: 'stdout', line })), bytes: Buffer.from(l.join('\n')) });
    forward(batch('a', 'b'));
    behind = 5000; // the client stopped reading
    forward(batch('c', 'd', 'e'));
    forward(batch('f'));
    behind = 0;
    forward(batch('g', 'h'));
    expect(sent).toEqual(['a\nb', '[corral: 4 lines dropped: the client is too slow]', 'g\nh']);
  });
});

describe('flow control', () => {
  let server: TestServer;
  beforeAll(async () => {
    // The default cap (4 MiB): a reader that reads must not be judged behind, even on a busy
    // machine where one turn reads 2 MiB of the flood before the client gets to run.
    server = await startTestServer();
  });
  afterAll(() => server.stop());

  it('a stalled client neither blocks the child nor the other client, and loses lines with a marker', async () => {
    const line = 'z'.repeat(499);
    const mb = 40;
    const inst = await createInstance(server, server.adminToken, {
      name: 'flood',
      shell: `sleep 1; yes ${line} | head -c ${mb * 1_000_000}; echo; echo END`,
      restart: 'never',
    });
    const url = `${server.url.replace('http', 'ws')}/api/v1/instances/${inst.id}/attach`;
    const headers = { authorization: `Bearer ${server.adminToken}` };
    const stalled = new WebSocket(url, { headers });
    const reader = new WebSocket(url, { headers });
    await Promise.all([stalled, reader].map((ws) => new Promise((r) => ws.once('open', r))));
    // The stalled client stops reading its socket: the server's buffer for it fills up.
    (stalled as unknown as { _socket: { pause(): void } })._socket.pause();
    const stalledFrames: string[] = [];
    stalled.on('message', (d) => stalledFrames.push(d.toString()));
    let readerBytes = 0;
    const readerDone = new Promise<void>((resolve) =>
      reader.on('message', (d) => {
        // A frame is a line, or several separated by "\n" when the client was behind.
        const text = d.toString();
        readerBytes += text.length + 1;
        if (text === 'END' || text.endsWith('\nEND')) resolve();
      }),
    );
    const rssBefore = process.memoryUsage().rss;
    let rssPeak = rssBefore;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 50);

    // The child writes everything and exits although one client reads nothing.
    await waitForState(server, server.adminToken, inst.id, 'exited', 120_000);
    await readerDone;
    clearInterval(sampler);
    expect(readerBytes).toBeGreaterThan(mb * 1_000_000 * 0.5);

    (stalled as unknown as { _socket: { resume(): void } })._socket.resume();
    await new Promise((r) => setTimeout(r, 1000));
    expect(stalledFrames.join('\n')).toMatch(/\[corral: \d+ lines dropped: the client is too slow\]/);
    // Far less than the flood went through the stalled client's buffer.
    expect(stalledFrames.join('\n').split('\n').length).toBeLessThan((mb * 1_000_000) / 500 / 2);
    // The server (in this process) did not hold the flood in memory.
    expect(rssPeak - rssBefore).toBeLessThan(mb * 1_000_000 * 2);
    stalled.close();
    reader.close();
  });
});

describe('a client that keeps up', () => {
  let server: TestServer;
  beforeAll(async () => {
    // This reader shares the server's event loop (an in-process server) and, in the full
    // suite, a loaded machine: it can fall megabytes behind for a moment although it reads all
    // along, and a drop of its last line (END) would hang the test. A remote client has its
    // own CPU; the default cap is the stalled test's, above, and the bench's.
    server = await startTestServer({ instances: { logs: { clientBufferBytes: 32 * 2 ** 20 } } });
  });
  afterAll(() => server.stop());

  it('gets every line, in order, the lines read together sharing a frame; so do the file and the tail', async () => {
    const n = 50_000;
    const maxLine = 16 * 1024; // logs.maxLineBytes (default)
    // 50,000 numbered 200-byte lines (10 MB, with their newlines) as fast as the child can write them, lines
    // crossing the reads' boundaries, and in the middle one line of 40,000 bytes: it comes cut
    // into pieces of at most maxLineBytes.
    const inst = await createInstance(server, server.adminToken, {
      name: 'counted',
      shell: `sleep 1; seq -f '%0199g' 1 ${n / 2}; head -c 40000 /dev/zero | tr '\\0' L; echo; seq -f '%0199g' ${n / 2 + 1} ${n}; echo END; sleep 1000`,
      restart: 'never',
    });
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/api/v1/instances/${inst.id}/attach?token=${server.adminToken}`);
    let frames = 0;
    const lines: string[] = [];
    const done = new Promise<void>((resolve) =>
      ws.on('message', (d) => {
        frames++;
        for (const line of d.toString().split('\n')) {
          lines.push(line);
          if (line === 'END') resolve();
        }
      }),
    );
    await done;
    ws.close();
    const pieces = ['L'.repeat(maxLine), 'L'.repeat(maxLine), 'L'.repeat(40_000 - 2 * maxLine)];
    const numbered = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => String(from + i).padStart(199, '0'));
    const expected = [...numbered(1, n / 2), ...pieces, ...numbered(n / 2 + 1, n), 'END'];
    expect(lines.filter((l) => l.startsWith('[corral:'))).toEqual([]);
    expect(lines.length).toBe(expected.length);
    expect(lines.every((l, i) => l === expected[i])).toBe(true);
    // One frame per line would be n frames.
    expect(frames).toBeLessThan(n / 4);

    // The file (read back through logs) and the in-memory tail (what follow starts with) hold them too, in order.
    const auth = { authorization: `Bearer ${server.adminToken}` };
    const kept = (await (await fetch(`${server.url}/api/v1/instances/${inst.id}/logs?tail=100000`, { headers: auth })).text()).split('\n');
    expect(kept.pop()).toBe('');
    // Every line, in order — but for lines the disk fell behind on (logs.pendingWriteBytes: a
    // busy machine can lag its writes by megabytes under this firehose), dropped by design and
    // counted by a marker right after the gap; none goes missing without one.
    let next = 0;
    for (const l of kept) {
      const gap = /^\[corral\] \[corral: (\d+) lines not written: the disk is behind\]$/.exec(l);
      if (gap) next += Number(gap[1]);
      else if (!l.startsWith('[corral] ')) expect(l === expected[next++], `line ${next} of the file`).toBe(true);
    }
    expect(next).toBe(expected.length);
    const follow = await openStream(`${server.url}/api/v1/instances/${inst.id}/logs?follow=true&tail=500`, auth);
    const tail = (await follow.until('END\n')).split('\n').slice(0, -1).filter((l) => !l.startsWith('[corral] '));
    await follow.close();
    expect(tail.length).toBeGreaterThan(100);
    expect(tail).toEqual(expected.slice(-tail.length));
  }, 90_000);
});
