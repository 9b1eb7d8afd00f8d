/**
 * Output as bytes (src/core/instances/log-chunks.ts): the one-pass check that a chunk needs no
 * JSON escaping, at every byte value and every alignment (it reads four bytes at a time), and
 * the NDJSON it builds without strings, byte for byte what JSON.stringify writes.
 */
import { describe, expect, it } from 'vitest';
import { lineRanges, ndjsonOf, needsJsonEscape } from '../../src/core/instances/log-chunks.js';

describe('log chunks', () => {
  it('needsJsonEscape finds every byte JSON escapes (but "\\n"), wherever it sits in the buffer', () => {
    const backing = Buffer.alloc(64 + 8, 'a');
    for (let byte = 0; byte < 256; byte++) {
      const escaped = JSON.stringify(String.fromCharCode(byte)).length > 3;
      const expected = byte !== 10 && byte < 0x80 && escaped;
      // Every start alignment and position, including the unaligned head and tail of the words.
      for (const start of [0, 1, 2, 3]) {
        for (const len of [1, 3, 5, 8, 13, 64]) {
          for (const at of new Set([0, 1, Math.floor(len / 2), len - 2, len - 1].filter((i) => i >= 0 && i < len))) {
            backing.fill('a');
            const view = backing.subarray(start, start + len);
            view[at] = byte;
            if (needsJsonEscape(view) !== expected) {
              throw new Error(`byte ${byte} at ${at} of ${len} (start ${start}): expected ${expected}`);
            }
          }
        }
      }
    }
    expect(needsJsonEscape(Buffer.from('plain text\nwith lines\n'))).toBe(false);
    expect(needsJsonEscape(Buffer.from('tab\there'))).toBe(true);
  });

  it('ndjsonOf writes what JSON.stringify would, one record per line', () => {
    const data = Buffer.from('first\n\nthird line é 😀\n');
    const { ranges, rest, cutsLong } = lineRanges(data, 1000);
    expect([rest, cutsLong]).toEqual([data.length, false]);
    const out = ndjsonOf(data, ranges, Buffer.from('{"t":5,"s":"stdout","l":"'));
    const expected = ['first', '', 'third line é 😀'].map((l) => `${JSON.stringify({ t: 5, s: 'stdout', l })}\n`).join('');
    expect(out.toString()).toBe(expected);
  });

  it('lineRanges cuts a long line into pieces of at most max bytes, never inside a character', () => {
    const line = 'ab' + '€'.repeat(10); // 2 + 30 bytes
    const data = Buffer.from(`${line}\nrest`);
    const { ranges, rest, cutsLong } = lineRanges(data, 8);
    expect(cutsLong).toBe(true);
    const pieces: string[] = [];
    for (let i = 0; i < ranges.length; i += 2) pieces.push(data.toString('utf8', ranges[i], ranges[i + 1]));
    expect(pieces.join('')).toBe(line);
    for (const p of pieces) {
      expect(Buffer.byteLength(p)).toBeLessThanOrEqual(8);
      expect(p).not.toContain('\ufffd');
    }
    expect(data.subarray(rest).toString()).toBe('rest');
  });
});
