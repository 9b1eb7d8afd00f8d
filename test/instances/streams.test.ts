import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { api, startTestServer, type TestServer } from '../helpers/server.js';
import { createInstance, openStream, waitForState } from './helpers.js';

/**
 * Collects a WebSocket's text frames, a line at a time (a text frame carries the lines read
 * together, separated by "\n"; a JSON frame is one line); `until` waits for one matching.
 */
function collect(ws: WebSocket) {
  const frames: string[] = [];
  const waiters: { pred: (f: string) => boolean; resolve: (f: string) => void }[] = [];
  ws.on('message', (data) => {
    for (const f of data.toString().split('\n')) {
      frames.push(f);
      for (const w of waiters.splice(0)) (w.pred(f) ? w.resolve(f) : waiters.push(w));
    }
  });
  return {
    frames,
    until: (pred: (f: string) => boolean, ms = 10_000) =>
      new Promise<string>((resolve, reject) => {
        const found = frames.find(pred);
        if (found) return resolve(found);
        const timer = setTimeout(() => reject(new Error(`no matching frame; got ${JSON.stringify(frames.slice(-5))}`)), ms);
        waiters.push({ pred, resolve: (f) => (clearTimeout(timer), resolve(f)) });
      }),
  };
}

const opened = (ws: WebSocket) =>
  new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });

describe('logs, attach and events', () => {
  let server: TestServer;
  let auth: { authorization: string };
  beforeAll(async () => {
    server = await startTestServer();
    auth = { authorization: `Bearer ${server.adminToken}` };
  });
  afterAll(() => server.stop());

  it('attach: frames in go to stdin, output lines come out', async () => {
    const inst = await createInstance(server, server.adminToken, {
      name: 'echoer',
      shell: 'while read line; do echo "got $line"; echo "err $line" >&2; done',
    });
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/api/v1/instances/${inst.id}/attach`, { headers: auth });
    const got = collect(ws);
    await opened(ws);
    ws.send('hello\n');
    expect(await got.until((f) => f === 'got hello')).toBe('got hello');
    expect(await got.until((f) => f === 'err hello')).toBe('err hello');
    ws.close();

    const ws2 = new WebSocket(`${server.url.replace('http', 'ws')}/api/v1/instances/echoer/attach?streams=1&token=${server.adminToken}`);
    const got2 = collect(ws2);
    await opened(ws2);
    ws2.send('again\n');
    const frame = JSON.parse(await got2.until((f) => f.includes('err again'))) as { stream: string; line: string };
    expect(frame).toEqual({ stream: 'stderr', line: 'err again' });
    expect(got2.frames.map((f) => JSON.parse(f))).toContainEqual({ stream: 'stdout', line: 'got again' });
    ws2.close();
  });

  it('attach to an unknown instance is a 404 before the handshake', async () => {
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/api/v1/instances/nothing-here/attach`, { headers: auth });
    const status = await new Promise<number>((resolve) =>
      ws.once('unexpected-response', (req, res) => {
        req.destroy();
        resolve(res.statusCode ?? 0);
      }),
    );
    expect(status).toBe(404);
  });

  it('logs: tail, since and follow', async () => {
    const inst = await createInstance(server, server.adminToken, {
      name: 'counter',
      shell: 'i=0; while [ $i -lt 20 ]; do echo "line $i"; i=$((i+1)); done; while true; do read x || sleep 1000; echo "in $x"; done',
    });
    let text = '';
    for (let i = 0; i < 50 && !text.includes('line 19'); i++) {
      text = await (await fetch(`${server.url}/api/v1/instances/${inst.id}/logs?tail=1000`, { headers: auth })).text();
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(text).toContain('line 0\n');
    const tail = await (await fetch(`${server.url}/api/v1/instances/${inst.id}/logs?tail=3`, { headers: auth })).text();
    expect(tail).toBe('line 17\nline 18\nline 19\n');
    const future = await (await fetch(`${server.url}/api/v1/instances/${inst.id}/logs?since=${Date.now() + 60_000}`, { headers: auth })).text();
    expect(future).toBe('');
    const bad = await fetch(`${server.url}/api/v1/instances/${inst.id}/logs?since=yesterday-ish`, { headers: auth });
    expect(bad.status).toBe(400);
    expect((await fetch(`${server.url}/api/v1/instances/${inst.id}/logs?tail=-1`, { headers: auth })).status).toBe(400);

    const follow = await openStream(`${server.url}/api/v1/instances/${inst.id}/logs?follow=true&tail=2&format=ndjson`, auth);
    expect(follow.headers['content-type']).toMatch(/ndjson/);
    await follow.until('line 19');
    expect(follow.text()).not.toContain('line 17');
    // Live output arrives on the open stream.
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/api/v1/instances/${inst.id}/attach`, { headers: auth });
    await opened(ws);
    ws.send('live\n');
    const buf = await follow.until('in live');
    const entry = JSON.parse(buf.trim().split('\n').find((l) => l.includes('in live'))!) as { t: string; stream: string };
    expect(entry.stream).toBe('stdout');
    expect(Date.parse(entry.t)).toBeGreaterThan(Date.now() - 60_000);
    ws.close();
    await follow.close();
  });

  it('logs: follow sends the lines read together in one write, still one line per record (text and NDJSON)', async () => {
    const n = 20_000;
    const inst = await createInstance(server, server.adminToken, {
      name: 'fast-follow',
      shell: `sleep 1; seq -f 'row %06g' 1 ${n}; echo DONE; sleep 1000`,
    });
    const base = `${server.url}/api/v1/instances/${inst.id}/logs?follow=true&tail=0`;
    const [text, ndjson, search] = await Promise.all([
      openStream(base, auth),
      openStream(`${base}&format=ndjson`, auth),
      openStream(`${base}&search=${encodeURIComponent('ROW 0001')}`, auth), // rows 100 to 199 (any case)
    ]);
    const rows = Array.from({ length: n }, (_, i) => `row ${String(i + 1).padStart(6, '0')}`);
    const textLines = (await text.until('\nDONE\n')).split('\n').filter((l) => l.startsWith('row ') || l === 'DONE');
    expect(textLines).toEqual([...rows, 'DONE']);
    const records = (await ndjson.until('"line":"DONE"}\n'))
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { t: string; stream: string; line: string });
    const output = records.filter((r) => r.stream === 'stdout');
    expect(output.map((r) => r.line)).toEqual([...rows, 'DONE']);
    expect(output.every((r) => Object.keys(r).join() === 't,stream,line' && !Number.isNaN(Date.parse(r.t)))).toBe(true);
    const found = (await search.until('row 000199\n')).split('\n').slice(0, -1);
    expect(found).toEqual(rows.slice(99, 199));
    await Promise.all([text.close(), ndjson.close(), search.close()]);
  }, 60_000);

  it('events: state changes of the instance stream as SSE', async () => {
    const events = await openStream(`${server.url}/api/v1/events`, auth);
    expect(events.headers['content-type']).toMatch(/text\/event-stream/);
    await events.until('retry:');
    const inst = await createInstance(server, server.adminToken, { name: 'evented', shell: 'exit 0', restart: 'never' });
    await waitForState(server, server.adminToken, inst.id, 'exited');
    const buf = await events.until('"state":"exited"');
    const states = [...buf.matchAll(/data: (\{.*\})/g)]
      .map((m) => JSON.parse(m[1]!) as { id: string; state: string })
      .filter((e) => e.id === inst.id)
      .map((e) => e.state);
    expect(states).toEqual(['starting', 'running', 'exited']);
    await events.close();
    expect((await api(server, undefined, 'GET', '/api/v1/events')).status).toBe(401);
  });
});
