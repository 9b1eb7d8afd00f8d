/**
 * The kept log through the API: each line marked with its stream and time, a search over
 * everything kept (rotated files included, not just the memory tail), a download of all of
 * it as an attachment, and bad input refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createUser, startTestServer, type TestServer } from '../helpers/server.js';
import { createInstance, waitForState } from './helpers.js';

let server: TestServer;
let alice: string;
let bob: string;
let id: string;

// 3000 numbered lines on stdout (past the 200-line memory ring and across rotated files),
// a few on stderr, then it exits.
const SCRIPT = `for (let i = 0; i < 3000; i++) console.log('line ' + i + (i % 1000 === 7 ? ' NEEDLE' : ''));
console.error('on stderr: Needle here');`;

beforeAll(async () => {
  server = await startTestServer({ instances: { logs: { fileBytes: 32 * 1024, keepFiles: 10, memoryLines: 200 } } });
  alice = await createUser(server, 'alice');
  bob = await createUser(server, 'bob');
  const inst = await createInstance(server, alice, { name: 'chatty', command: [process.execPath, '-e', SCRIPT], restart: 'never' });
  id = inst.id;
  await waitForState(server, alice, id, 'exited');
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

async function get(path: string, token = alice) {
  const res = await fetch(`${server.url}/api/v1/instances/${id}/logs${path}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

describe('instance logs', () => {
  it('marks each line with its stream and time (NDJSON), corral notes included', async () => {
    const parse = (text: string) => text.trim().split('\n').map((l) => JSON.parse(l));
    const last = parse((await get('?tail=3&format=ndjson')).text);
    expect(last.at(-1).stream).toBe('corral'); // the exit note
    expect(last.some((l) => l.stream === 'stdout' && l.line === 'line 2999')).toBe(true);
    const err = parse((await get('?search=on%20stderr&format=ndjson')).text);
    expect(err.map((l) => l.line)).toEqual(['on stderr: Needle here']);
    for (const l of last) expect(Date.parse(l.t)).toBeGreaterThan(Date.now() - 60_000);
  });

  it('searches everything kept, any case, also lines long gone from memory', async () => {
    const { status, text } = await get('?search=needle&tail=1000&format=ndjson');
    expect(status).toBe(200);
    const lines = text.trim().split('\n').map((l) => JSON.parse(l));
    // stdout and stderr are two pipes: the stderr line may be read before later stdout lines.
    expect(lines.filter((l) => l.stream === 'stdout').map((l) => l.line)).toEqual(['line 7 NEEDLE', 'line 1007 NEEDLE', 'line 2007 NEEDLE']);
    expect(lines.filter((l) => l.stream === 'stderr').map((l) => l.line)).toEqual(['on stderr: Needle here']);
    // The last N matches.
    expect((await get('?search=NEEDLE&tail=1')).text).toBe(`${lines[3].line}\n`);
    expect((await get('?search=no-such-text')).text).toBe('');
  });

  it('downloads everything kept as an attachment, with times and streams', async () => {
    const { status, headers, text } = await get('?download=true');
    expect(status).toBe(200);
    expect(headers.get('content-disposition')).toBe('attachment; filename="chatty.log"');
    expect(headers.get('content-type')).toMatch(/^text\/plain/);
    const lines = text.trim().split('\n');
    const numbered = lines.filter((l) => / stdout line \d+/.test(l)).map((l) => Number(/line (\d+)/.exec(l)![1]));
    expect(numbered).toEqual(Array.from({ length: 3000 }, (_, i) => i)); // all of them, in order
    expect(lines.find((l) => l.includes('Needle here'))).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z stderr on stderr: Needle here$/);
    expect(lines.some((l) => / corral \[corral\] /.test(l))).toBe(true);
    // A search and NDJSON work in a download too.
    const found = await get('?download=true&search=needle&format=ndjson');
    expect(found.text.trim().split('\n')).toHaveLength(4);
  });

  it('refuses bad input and other users', async () => {
    for (const q of ['?download=true&follow=true', '?search=', `?search=${'x'.repeat(201)}`, '?since=soon', '?timestamps=maybe']) {
      const res = await get(q);
      expect(res.status, q).toBe(400);
      expect(JSON.parse(res.text).error.code).toBe('validation_failed');
    }
    expect((await get('?download=true', bob)).status).toBe(404);
    expect((await get('?search=needle', bob)).status).toBe(404);
  });

  it('a search that follows gets only matching lines, then new ones as they come', async () => {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), 20_000);
    const got = await fetch(`${server.url}/api/v1/instances/${id}/logs?follow=true&search=needle&tail=0`, {
      headers: { authorization: `Bearer ${alice}` },
      signal: ctl.signal,
    });
    const reader = got.body!.pipeThrough(new TextDecoderStream()).getReader();
    const res = await api(server, alice, 'POST', `/api/v1/instances/${id}/start`);
    expect(res.status).toBe(200);
    let buf = '';
    // The four matches of the new run, and nothing else of its 3000 lines.
    while ((buf.match(/\n/g) ?? []).length < 4) buf += (await reader.read().catch((e) => { throw new Error(`${e}: got ${buf}; ${JSON.stringify(res.body)}`); })).value ?? '';
    ctl.abort();
    clearTimeout(timer);
    const lines = buf.trim().split('\n');
    expect(lines).toHaveLength(4);
    for (const line of lines) expect(line.toLowerCase()).toContain('needle');
    expect(lines.filter((l) => l.includes('line 1007 NEEDLE'))).toHaveLength(1);
  }, 30_000);
});
