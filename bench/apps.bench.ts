/**
 * Apps: three redeploys of a small Node web app under steady load through the proxy (paced
 * requests from 127.0.0.1, bounded in time): failed requests and the time from the deploy
 * request to the new release answering, next to the same run with delete-and-recreate; then
 * proxied throughput with `web=2` copies next to one. The server runs as its own process
 * (`npm run build` first), so the load does not share its event loop.
 */
import http from 'node:http';
import os from 'node:os';
import { rm } from 'node:fs/promises';
import { tarBytes } from '../test/sources/helpers/archives.js';
import { api, ADMIN_PASSWORD, createToken, login, spawnServer, tempDir, type ChildServer } from '../test/helpers/server.js';
import { fmt, percentile, table, type Benchmark } from './lib.js';

const RATE = Number(process.env.BENCH_APPS_RATE ?? 200);
const SECONDS = Number(process.env.BENCH_APPS_SECONDS ?? 20);
const THROUGHPUT_SECONDS = Number(process.env.BENCH_APPS_THROUGHPUT_SECONDS ?? 8);
const CONNECTIONS = 32;
const DOMAIN = 'apps.bench';

/** Answers with its tag after ~1 ms of CPU work (a small page render), so copies have work to share. */
const APP = `
const crypto = require('crypto');
const tag = require('./tag.json');
require('http').createServer((q, s) => {
  let h = Buffer.alloc(64);
  for (let i = 0; i < 400; i++) h = crypto.createHash('sha256').update(h).digest();
  s.end(JSON.stringify({ tag, h: h.toString('hex', 0, 4) }));
}).listen(Number(process.env.PORT), '127.0.0.1');
`;

const archive = (tag: string) =>
  tarBytes(
    [
      { path: 'Procfile', body: 'web: node server.js\n' },
      { path: 'server.js', body: APP },
      { path: 'tag.json', body: JSON.stringify(tag) },
    ],
    { gzip: true },
  );

interface Server {
  server: ChildServer;
  url: string;
  token: string;
  data: string;
}

async function startServer(): Promise<Server> {
  const data = await tempDir('corral-bench-apps-');
  const server = await spawnServer(data, { CORRAL_PROXY__BASE_DOMAIN: DOMAIN, CORRAL_APPS__DRAIN_SECONDS: '2' });
  const token = await createToken(server.url, await login(server.url, 'admin', ADMIN_PASSWORD), 'bench');
  return { server, url: server.url, token, data };
}

async function deploy(s: Server, name: string, tag: string): Promise<void> {
  const form = new FormData();
  form.append('archive', new Blob([new Uint8Array(archive(tag))]), 'app.tar.gz');
  const res = await fetch(`${s.url}/api/v1/apps/${name}/releases`, { method: 'POST', headers: { authorization: `Bearer ${s.token}` }, body: form });
  if (res.status !== 201) throw new Error(`deploy ${name} ${tag}: ${res.status} ${await res.text()}`);
}

/** One request through the proxy; resolves with the status and the app's tag (if it answered). */
function request(s: Server, agent: http.Agent, app: string): Promise<{ status: number; tag?: string }> {
  const u = new URL(s.url);
  return new Promise((resolve) => {
    const req = http.request(
      { host: u.hostname, port: u.port, path: '/', agent, headers: { host: `${app}--admin.${DOMAIN}`, authorization: `Bearer ${s.token}` } },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode!, tag: (JSON.parse(body) as { tag: string }).tag });
          } catch {
            resolve({ status: res.statusCode! });
          }
        });
      },
    );
    req.setTimeout(10_000, () => req.destroy());
    req.on('error', () => resolve({ status: 0 }));
    req.end();
  });
}

/**
 * Paced load at RATE req/s for SECONDS while `changes` run at 3 s, then every SECONDS/3:
 * returns the failures and, for each change, the ms from its start to the first answer
 * with its tag.
 */
async function underLoad(s: Server, app: string, changes: { tag: string; run: () => Promise<void> }[]) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const started = performance.now();
  let sent = 0;
  let failed = 0;
  const latency: number[] = [];
  const firstSeen = new Map<string, number>();
  const inFlight = new Set<Promise<void>>();
  const changeStarts = new Map<string, number>();
  const changesDone = (async () => {
    for (const [i, c] of changes.entries()) {
      const at = 3_000 + (i * (SECONDS * 1000 - 4_000)) / changes.length;
      await new Promise((r) => setTimeout(r, Math.max(0, started + at - performance.now())));
      changeStarts.set(c.tag, performance.now());
      await c.run();
    }
  })();
  while (performance.now() - started < SECONDS * 1000) {
    const due = started + (sent * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    sent++;
    const t = performance.now();
    const p = request(s, agent, app).then((r) => {
      latency.push(performance.now() - t);
      if (r.status !== 200) failed++;
      if (r.tag && !firstSeen.has(r.tag)) firstSeen.set(r.tag, performance.now());
    });
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  }
  await Promise.all(inFlight);
  await changesDone;
  agent.destroy();
  const switchMs = changes.map((c) => (firstSeen.get(c.tag) ?? NaN) - (changeStarts.get(c.tag) ?? NaN));
  return { sent, failed, switchMs, p99: percentile(latency, 99) };
}

async function redeploys(): Promise<string> {
  const s = await startServer();
  try {
    await deploy(s, 'zero', 'v1');
    const zero = await underLoad(s, 'zero', ['v2', 'v3', 'v4'].map((tag) => ({ tag, run: () => deploy(s, 'zero', tag) })));
    await deploy(s, 'recreate', 'v1');
    const recreate = await underLoad(
      s,
      'recreate',
      ['v2', 'v3', 'v4'].map((tag) => ({
        tag,
        run: async () => {
          await api(s, s.token, 'DELETE', '/api/v1/apps/recreate');
          await deploy(s, 'recreate', tag);
        },
      })),
    );
    const row = (what: string, r: typeof zero) => [
      what,
      r.sent,
      r.failed,
      fmt((100 * r.failed) / r.sent, 2),
      r.switchMs.map((ms) => fmt(ms, 0)).join(', '),
      fmt(r.p99),
    ];
    return [
      table(
        ['3 redeploys under load', 'requests', 'failed', 'failed %', 'deploy → new release answering (ms)', 'p99 ms'],
        [row('corral deploy (zero-downtime switch)', zero), row('delete the app, then deploy', recreate)],
      ),
      '',
      `${RATE} req/s for ${SECONDS} s through the proxy from 127.0.0.1 (keep-alive, paced), a redeploy at 3 s and every ` +
        `${fmt((SECONDS - 4) / 3, 1)} s after; the app does ~1 ms of hashing per request. "Deploy → new release answering" is from ` +
        'the deploy request to the first answer carrying the new tag: upload, unpack check, the new copy\'s sandbox and ' +
        'Node start, the readiness probe and the switch.',
    ].join('\n');
  } finally {
    await s.server.kill('SIGTERM');
    await rm(s.data, { recursive: true, force: true });
  }
}

/** Closed loop: CONNECTIONS requests in flight for THROUGHPUT_SECONDS; requests per second. */
async function throughput(s: Server, app: string): Promise<{ rps: number; failed: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const until = performance.now() + THROUGHPUT_SECONDS * 1000;
  let done = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (performance.now() < until) {
        const r = await request(s, agent, app);
        if (r.status === 200) done++;
        else failed++;
      }
    }),
  );
  agent.destroy();
  return { rps: done / THROUGHPUT_SECONDS, failed };
}

async function copies(): Promise<string> {
  const s = await startServer();
  try {
    await deploy(s, 'scaled', 'v1');
    await throughput(s, 'scaled'); // warm-up
    const one = await throughput(s, 'scaled');
    const res = await api(s, s.token, 'PUT', '/api/v1/apps/scaled/formation', { web: 2 });
    if (res.status !== 200) throw new Error(`scale: ${res.status} ${JSON.stringify(res.body)}`);
    for (let i = 0; i < 100; i++) {
      const app = await api(s, s.token, 'GET', '/api/v1/apps/scaled');
      if ((app.body.copies as { ready: boolean }[]).filter((c) => c.ready).length === 2) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await throughput(s, 'scaled');
    const two = await throughput(s, 'scaled');
    return [
      table(
        ['copies of web', 'requests/s', 'failed', 'vs one copy'],
        [
          ['1', fmt(one.rps, 0), one.failed, '1.00×'],
          ['2', fmt(two.rps, 0), two.failed, `${fmt(two.rps / one.rps, 2)}×`],
        ],
      ),
      '',
      `${CONNECTIONS} keep-alive connections in a closed loop for ${THROUGHPUT_SECONDS} s (after a warm-up run), through the proxy, ` +
        'on the same 2 cores as corral and the load generator: the second copy helps only as far as a core is left for it.',
    ].join('\n');
  } finally {
    await s.server.kill('SIGTERM');
    await rm(s.data, { recursive: true, force: true });
  }
}

/** The machine's 1-minute load average, said with each table: other work on 2 cores moves these numbers. */
const load = () => `Load average when it ended: ${fmt(os.loadavg()[0]!, 1)} on ${os.cpus().length} cores.`;

const bench: Benchmark = async () => {
  const redeployed = await redeploys();
  const redeployLoad = load();
  const scaled = await copies();
  return [
    { title: 'Apps: redeploys under load', markdown: `${redeployed} ${redeployLoad}` },
    { title: 'Apps: throughput with two copies', markdown: `${scaled} ${load()}` },
  ];
};
export default bench;
