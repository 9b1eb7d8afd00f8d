/**
 * The relay beside the alternative of no relay at all: a peer talking to a `ws` echo server
 * directly, and the same peer going through corral's relay to a host whose link echoes
 * (peer → corral → link → corral → peer). Round-trip latency of small text frames one at a
 * time, and throughput of 64 KiB binary frames with 16 in flight. Everything runs in this one
 * process on 127.0.0.1, so the numbers compare the two paths rather than measure a network.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import WebSocket, { WebSocketServer } from 'ws';
import { loadConfig } from '../src/core/config.js';
import { startServer } from '../src/server.js';
import { fmt, percentile, table, type Benchmark } from './lib.js';

const ROUND_TRIPS = Number(process.env.BENCH_RELAY_ROUND_TRIPS ?? 2000);
const BULK_FRAMES = Number(process.env.BENCH_RELAY_FRAMES ?? 2000);
const FRAME_BYTES = 64 * 1024;
const WINDOW = 16;

const opened = (ws: WebSocket) => new Promise<void>((resolve, reject) => (ws.once('open', () => resolve()), ws.once('error', reject)));
const nextMessage = (ws: WebSocket) => new Promise<Buffer>((resolve) => ws.once('message', (d: Buffer) => resolve(d)));

/** Round trips of a small text frame, one at a time, in ms. */
async function latency(ws: WebSocket): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < ROUND_TRIPS + 50; i++) {
    const t = performance.now();
    const reply = nextMessage(ws);
    ws.send(`ping ${i} ${'x'.repeat(16)}`);
    await reply;
    if (i >= 50) out.push(performance.now() - t);
  }
  return out;
}

/** MB/s of 64 KiB binary frames echoed back, WINDOW in flight. */
async function throughput(ws: WebSocket): Promise<number> {
  const frame = Buffer.alloc(FRAME_BYTES, 7);
  let sent = 0;
  let received = 0;
  const t = performance.now();
  await new Promise<void>((resolve) => {
    ws.on('message', () => {
      received++;
      if (received === BULK_FRAMES) return resolve();
      if (sent < BULK_FRAMES) (sent++, ws.send(frame));
    });
    for (; sent < WINDOW; sent++) ws.send(frame);
  });
  ws.removeAllListeners('message');
  return (2 * BULK_FRAMES * FRAME_BYTES) / 1e6 / ((performance.now() - t) / 1000);
}

const bench: Benchmark = async () => {
  const data = await mkdtemp(path.join(tmpdir(), 'corral-bench-relay-'));
  const server = await startServer(loadConfig({ env: {}, flags: { host: '127.0.0.1', port: 0, logLevel: 'silent', data, adminPassword: 'bench-admin-password' } }));
  const echo = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  echo.on('connection', (s) => s.on('message', (d, binary) => s.send(d, { binary })));
  await new Promise((r) => echo.once('listening', r));
  try {
    const admin = await server.corral.accounts.users.get('admin');
    const { token } = await server.corral.accounts.tokens.create(admin, { name: 'bench' });
    const headers = { authorization: `Bearer ${token}` };
    const base = `${server.url.replace(/^http/, 'ws')}/api/v1/relay/bench`;

    const direct = new WebSocket(`ws://127.0.0.1:${(echo.address() as AddressInfo).port}`);
    await opened(direct);

    const host = new WebSocket(`${base}?role=host`, { headers });
    await opened(host);
    const peer = new WebSocket(`${base}?type=bench`, { headers });
    await opened(peer);
    const hello = JSON.parse((await nextMessage(host)).toString()) as { peer: string };
    const link = new WebSocket(`${base}?role=link&peer=${hello.peer}`, { headers });
    const paired = nextMessage(peer);
    await opened(link);
    await paired;
    link.on('message', (d, binary) => link.send(d, { binary }));

    const rows: (string | number)[][] = [];
    for (const [name, ws] of [['direct to a ws echo server', direct], ['through corral’s relay', peer]] as const) {
      const ms = await latency(ws);
      const mbs = await throughput(ws);
      rows.push([name, fmt(percentile(ms, 50) * 1000, 0), fmt(percentile(ms, 99) * 1000, 0), fmt(mbs, 0)]);
    }
    for (const ws of [direct, host, peer, link]) ws.close();
    return [
      {
        title: 'Relay: latency and throughput',
        markdown:
          `${table(['path', 'round trip p50 (µs)', 'p99 (µs)', '64 KiB frames (MB/s, both ways)'], rows)}\n\n` +
          `${ROUND_TRIPS} sequential round trips of a 30-byte text frame; ${BULK_FRAMES} binary frames of 64 KiB with ${WINDOW} in flight, echoed back. ` +
          'The relay path crosses corral twice (peer → link and back); client, host and server share one process.',
      },
    ];
  } finally {
    echo.close();
    await server.close();
    await rm(data, { recursive: true, force: true });
  }
};

export default bench;
