/**
 * Reading a workload's output (src/drivers/process/output-reader.ts): small chunks back to back
 * pause reading for a moment so the next read takes more at once; a lone chunk is not held up;
 * nothing is lost or reordered either way.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readOutput } from '../../src/drivers/process/output-reader.js';

describe('output reader', () => {
  it('pauses after small chunks back to back, resumes by itself, and delivers everything in order', async () => {
    const stream = new PassThrough();
    const got: string[] = [];
    const stop = readOutput(stream, (c) => got.push(c.toString()));
    stream.write('a');
    stream.write('b');
    await new Promise((r) => setImmediate(r));
    expect(stream.isPaused()).toBe(true);
    stream.write('c');
    await new Promise((r) => setTimeout(r, 50));
    expect(stream.isPaused()).toBe(false);
    expect(got.join('')).toBe('abc');
    stop();
  });

  it('does not pause for a lone chunk, nor for big ones', async () => {
    const stream = new PassThrough();
    const got: Buffer[] = [];
    const stop = readOutput(stream, (c) => got.push(c));
    stream.write('lone line\n');
    await new Promise((r) => setImmediate(r));
    expect(stream.isPaused()).toBe(false);
    stream.write(Buffer.alloc(64 * 1024, 1));
    stream.write(Buffer.alloc(64 * 1024, 2));
    await new Promise((r) => setImmediate(r));
    expect(stream.isPaused()).toBe(false);
    expect(Buffer.concat(got).length).toBe(10 + 128 * 1024);
    stop();
  });
});
