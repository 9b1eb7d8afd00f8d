/**
 * The proxy side by side with what a user would otherwise put in front of an app: the same
 * backend (a tiny node http server, run as a corral instance), the same load tool (wrk,
 * 50 connections), direct, through corral on the instance's own host (the default and only
 * safe routing, docs/proxy.md: once with the host cookie a browser gets from the login
 * handshake, once with a token as a script would send it), through configurable-http-proxy
 * 5, through nginx, and through a bare Node proxy (node:http + undici, no auth: the floor
 * for any proxy written in Node on this machine). Every client connects to 127.0.0.1 and
 * names the instance host in its `Host` header: nothing here ever resolves `*.localhost`. Measured twice: at full load (requests/s) and
 * paced at a fixed rate every proxy sustains (the latency a proxy adds when not queueing).
 * Then idle proxied WebSockets: corral's RSS and open fds before, with them open, and after
 * they close.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmt, percentile, table, type Benchmark, type BenchSection } from './lib.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PASSWORD = 'bench-admin-password';
const DURATION = process.env.BENCH_PROXY_SECONDS ?? '5';
/** Targets are measured in turn, round after round, and each reports its median round. */
const ROUNDS = Number(process.env.BENCH_PROXY_ROUNDS ?? 5);
const CONNECTIONS = 50;
/**
 * Each connection waits this long on average between requests in the paced runs (50 / 50 ms
 * ≈ 1,000 req/s). The wait is random (0 to twice this): with a fixed one, all connections
 * fire together and every proxy queues bursts of 50.
 */
const PACE_MS = 50;
/** Room for 10,000 proxied WebSockets (two descriptors each in corral), as a deployment would set. */
const NOFILE = 65_536;

// The backend: "hello" over HTTP, and WebSocket handshakes accepted by hand (the sandbox
// sees no node_modules) and then left idle.
const BACKEND = `
const http = require('http'); const crypto = require('crypto');
const s = http.createServer((q, r) => { r.writeHead(200, { 'content-type': 'text/plain', 'content-length': 5 }); r.end('hello'); });
s.keepAliveTimeout = 60000;
s.on('upgrade', (q, sock) => {
  const a = crypto.createHash('sha1').update(q.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  sock.write('HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Accept: ' + a + '\\r\\n\\r\\n');
  sock.on('error', () => sock.destroy());
});
s.listen(process.env.PORT_HTTP, '127.0.0.1');`;

// The least a Node proxy can do: forward over a pooled undici connection, nothing else.
const BARE_NODE_PROXY = `
const http = require('http'); const { Pool } = require('undici');
const pool = new Pool(process.env.UPSTREAM, { connections: 64 });
http.createServer((req, res) => {
  pool.dispatch({ path: req.url, method: req.method, headers: ['host', req.headers.host], body: null }, {
    onRequestStart() {}, onResponseStart(c, status, h) { res.writeHead(status, h); }, onResponseData(c, chunk) { res.write(chunk); },
    onResponseEnd() { res.end(); }, onResponseError() { res.statusCode = 502; res.end(); },
  });
}).listen(process.env.PORT, '127.0.0.1');`;

const CORRAL = 'corral, instance host (host cookie)';
const CORRAL_TOKEN = 'corral, instance host (token)';

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

interface WrkResult {
  rps: number;
  p50: number;
  p99: number;
  /** CPU time the proxy process (and its children) spent per request, in µs: robust to a busy machine. */
  cpuUs: number;
}

/** A process and its direct children (nginx's master and workers). */
const withChildren = (pid: number | undefined): number[] =>
  pid ? [pid, ...readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)] : [];

/** utime + stime of processes, in seconds. */
function cpuSeconds(pids: number[]): number {
  if (!pids.length) return NaN;
  let ticks = 0;
  for (const p of pids) {
    const fields = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ');
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / 100;
}

interface Load {
  headers?: string[];
  /** The proxy's processes, for its CPU per request. */
  pids?: number[];
  /** A wrk script that paces each connection (see PACE_MS); full load without one. */
  pace?: string;
}

function wrk(url: string, { headers = [], pids = [], pace }: Load = {}): WrkResult {
  const cpu0 = cpuSeconds(pids);
  const args = ['-t2', `-c${CONNECTIONS}`, `-d${DURATION}s`, '--latency', ...(pace ? ['-s', pace] : []), ...headers.flatMap((h) => ['-H', h]), url];
  const out = spawnSync('wrk', args, { encoding: 'utf8' }).stdout;
  const ms = (label: string) => {
    const m = new RegExp(`^\\s*${label}%\\s+([\\d.]+)(us|ms|s)`, 'm').exec(out);
    if (!m) return NaN;
    return Number(m[1]) * ({ us: 0.001, ms: 1, s: 1000 } as Record<string, number>)[m[2]!]!;
  };
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (non2xx) throw new Error(`wrk ${url}: ${non2xx[1]} error responses`);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
  const cpuUs = ((cpuSeconds(pids) - cpu0) * 1e6) / requests;
  return { rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN), p50: ms('50'), p99: ms('99'), cpuUs };
}

const median = (xs: number[]) => percentile(xs, 50);

function medianResult(rs: WrkResult[]): WrkResult {
  return {
    rps: median(rs.map((r) => r.rps)),
    p50: median(rs.map((r) => r.p50)),
    p99: median(rs.map((r) => r.p99)),
    cpuUs: median(rs.map((r) => r.cpuUs)),
  };
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as net.AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A GET to 127.0.0.1:`port` with these headers (`host` among them for an instance host). */
function get(port: number, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Waits until 127.0.0.1:`port` answers `path` with a 200. */
async function waitFor(port: number, path = '/', headers: Record<string, string> = {}, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await get(port, path, headers).then((r) => r.status === 200, () => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`127.0.0.1:${port}${path} did not answer 200`);
}

/**
 * The instance host's cookie, through the handshake a browser goes through (docs/proxy.md):
 * the main origin's /host-login mints a code for `label`, the host's /_corral/callback trades
 * it for `corral_host`. The callback is asked of 127.0.0.1 with the host in `Host`.
 */
async function hostCookie(port: number, mainCookie: string, label: string): Promise<string> {
  const start = await get(port, `/host-login?host=${label}&next=%2F`, { cookie: mainCookie });
  if (start.status !== 302) throw new Error(`host login refused: ${start.status} ${start.body}`);
  const to = new URL(start.headers.location!);
  const done = await get(port, to.pathname + to.search, { host: to.host });
  const cookie = (done.headers['set-cookie'] ?? []).find((c) => c.startsWith('corral_host='));
  if (!cookie) throw new Error(`host login callback failed: ${done.status} ${done.body}`);
  return cookie.split(';')[0]!;
}

function start(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The command with its open-files limit raised to NOFILE, when this machine lets us (prlimit, CAP_SYS_RESOURCE). */
const withRoomForSockets = (cmd: string, args: string[]): [string, string[]] => {
  const raise = `--nofile=${NOFILE}:${NOFILE}`;
  return spawnSync('prlimit', [raise, 'true']).status === 0 ? ['prlimit', [raise, cmd, ...args]] : [cmd, args];
};

const openFilesLimit = (pid: number): number =>
  Number(/^Max open files\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'))?.[1] ?? NaN);

const stopChild = (c: ChildProcess | undefined) =>
  c && c.exitCode === null
    ? new Promise<void>((r) => {
        c.once('exit', () => r());
        c.kill('SIGTERM');
      })
    : Promise.resolve();

function usage(pid: number): { rssMb: number; fds: number } {
  const rss = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return { rssMb: Number(rss) / 1024, fds: readdirSync(`/proc/${pid}/fd`).length };
}

/**
 * Opens `n` WebSockets through corral to `host` (raw handshakes, in batches). Returns the open
 * sockets and how many handshakes ended without a 101 (refused, or closed unanswered).
 */
async function openSockets(port: number, host: string, token: string, n: number): Promise<{ sockets: net.Socket[]; failed: number }> {
  const sockets: net.Socket[] = [];
  let failed = 0;
  const one = () =>
    new Promise<net.Socket | undefined>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.write(
          `GET /ws HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
            `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer ${token}\r\n\r\n`,
        );
      });
      const fail = () => {
        s.destroy();
        resolve(undefined);
      };
      s.once('data', (d: Buffer) => (d.toString().startsWith('HTTP/1.1 101') ? resolve(s) : fail()));
      s.once('error', fail);
      s.once('close', fail); // after a 101 the promise is settled already
    });
  for (let i = 0; i < n; i += 250) {
    for (const s of await Promise.all(Array.from({ length: Math.min(250, n - i) }, one))) {
      if (s) sockets.push(s);
      else failed++;
    }
  }
  return { sockets, failed };
}

const bench: Benchmark = async () => {
  if (!has('wrk')) return [{ title: 'Proxy', markdown: '_Skipped: `wrk` is not installed (`apt-get install wrk`)._' }];
  const data = await mkdtemp(path.join(tmpdir(), 'corral-bench-proxy-'));
  const children: ChildProcess[] = [];
  const loadBefore = loadavg();
  try {
    // corral, as a separate process like the proxies it is compared with.
    const port = await freePort();
    const corral = start(...withRoomForSockets(process.execPath, [path.join(ROOT, 'bin/corral.js'), 'serve', '--data', data, '--port', String(port)]), {
      CORRAL_ADMIN_PASSWORD: PASSWORD,
      CORRAL_LOG_LEVEL: 'warn',
    });
    children.push(corral);
    const url = `http://127.0.0.1:${port}`;
    await waitFor(port, '/healthz');
    const login = await fetch(`${url}/api/v1/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'admin', password: PASSWORD }),
    });
    const cookie = login.headers.getSetCookie()[0]!.split(';')[0]!;
    const { csrfToken } = (await login.json()) as { csrfToken: string };
    const created = await fetch(`${url}/api/v1/instances`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie, 'x-csrf-token': csrfToken },
      body: JSON.stringify({ name: 'hello', command: [process.execPath, '-e', BACKEND], ports: [{ name: 'http' }] }),
    });
    const instance = (await created.json()) as { ports: { hostPort: number }[] };
    const backendPort = instance.ports[0]!.hostPort;
    await waitFor(backendPort);
    // The instance's own host under the default apps domain, as `GET /api/v1/proxy` gives it.
    const host = `hello--admin.localhost:${port}`;
    const tokenRes = await fetch(`${url}/api/v1/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie, 'x-csrf-token': csrfToken },
      body: JSON.stringify({ name: 'bench', scopes: ['proxy:read', 'proxy:write'] }),
    });
    const { token } = (await tokenRes.json()) as { token: string };
    const hostSession = await hostCookie(port, cookie, 'hello--admin');
    await waitFor(port, '/', { host, cookie: hostSession });

    const targets: [string, string, Load][] = [
      ['direct to the backend', `http://127.0.0.1:${backendPort}/`, {}],
      [CORRAL, `${url}/`, { headers: [`Host: ${host}`, `Cookie: ${hostSession}`], pids: [corral.pid!] }],
      [CORRAL_TOKEN, `${url}/`, { headers: [`Host: ${host}`, `Authorization: Bearer ${token}`], pids: [corral.pid!] }],
    ];

    const chpPort = await freePort();
    const chp = start(process.execPath, [
      path.join(ROOT, 'node_modules/configurable-http-proxy/bin/configurable-http-proxy'),
      '--ip', '127.0.0.1', '--port', String(chpPort), '--api-ip', '127.0.0.1', '--api-port', String(await freePort()),
      '--default-target', `http://127.0.0.1:${backendPort}`, '--log-level', 'warn',
    ], { CONFIGPROXY_AUTH_TOKEN: 'bench' });
    children.push(chp);
    await waitFor(chpPort);
    targets.push(['configurable-http-proxy 5', `http://127.0.0.1:${chpPort}/`, { pids: [chp.pid!] }]);

    let nginxNote = '';
    if (has('nginx')) {
      const ngPort = await freePort();
      const conf = path.join(data, 'nginx.conf');
      await writeFile(
        conf,
        `daemon off; worker_processes 1; pid ${data}/nginx.pid; error_log stderr error;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path ${data}/nb; proxy_temp_path ${data}/np; fastcgi_temp_path ${data}/nf; uwsgi_temp_path ${data}/nu; scgi_temp_path ${data}/ns;
  upstream app { server 127.0.0.1:${backendPort}; keepalive 64; }
  server { listen 127.0.0.1:${ngPort}; location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; } } }\n`,
      );
      const nginx = start('nginx', ['-c', conf, '-p', data]);
      children.push(nginx);
      await waitFor(ngPort);
      targets.push(['nginx 1 worker (keepalive upstream)', `http://127.0.0.1:${ngPort}/`, { pids: withChildren(nginx.pid) }]);
    } else nginxNote = ' nginx was not installed, so it is missing from the tables.';

    const bareport = await freePort();
    const bare = start(process.execPath, ['-e', BARE_NODE_PROXY], { PORT: String(bareport), UPSTREAM: `http://127.0.0.1:${backendPort}` });
    children.push(bare);
    await waitFor(bareport);
    targets.push(['bare Node proxy (node:http + undici, no auth)', `http://127.0.0.1:${bareport}/`, { pids: [bare.pid!] }]);

    const pace = path.join(data, 'pace.lua');
    await writeFile(pace, `function delay() return math.random(0, ${2 * PACE_MS}) end\n`);
    // Interleaved rounds, so a machine that gets busier or quieter during the run does not
    // favour whichever target happened to run first.
    const measure = (paced: boolean): [string, WrkResult][] => {
      const results = targets.map(() => [] as WrkResult[]);
      for (let round = 0; round < ROUNDS; round++) {
        targets.forEach(([, url, load], i) => results[i]!.push(wrk(url, paced ? { ...load, pace } : load)));
      }
      return targets.map(([name], i) => [name, medianResult(results[i]!)]);
    };
    const full = measure(false);
    const paced = measure(true);
    const row = (rows: [string, WrkResult][], name: string) => rows.find(([n]) => n === name)![1];
    const [base, corralRow, chpRow] = ['direct to the backend', CORRAL, 'configurable-http-proxy 5'].map((n) => row(full, n)) as [WrkResult, WrkResult, WrkResult];
    const pacedBase = row(paced, 'direct to the backend');
    const pacedCorral = row(paced, CORRAL);
    const load = (l: number[]) => l.map((x) => fmt(x, 2)).join(' ');
    const http: BenchSection = {
      title: 'Proxy: requests through corral vs configurable-http-proxy vs nginx',
      markdown:
        '**Full load** (each connection sends its next request as soon as the last is answered):\n\n' +
        table(
          ['path', 'req/s', 'p50 ms', 'p99 ms', 'added p99 ms', 'vs direct', 'proxy CPU µs/req'],
          full.map(([name, r]) => [
            name,
            fmt(r.rps, 0),
            fmt(r.p50, 2),
            fmt(r.p99, 2),
            fmt(r.p99 - base.p99, 2),
            `${fmt((100 * r.rps) / base.rps, 0)}%`,
            fmt(r.cpuUs, 0),
          ]),
        ) +
        `\n\n**Paced** at about ${fmt((1000 * CONNECTIONS) / PACE_MS, 0)} req/s (each connection waits 0–${2 * PACE_MS} ms, at random, between requests), below every proxy's ` +
        'saturation, so the added latency is the proxy\'s own and not its queue:\n\n' +
        table(
          ['path', 'req/s', 'p50 ms', 'p99 ms', 'added p50 ms', 'added p99 ms', 'proxy CPU µs/req'],
          paced.map(([name, r]) => [name, fmt(r.rps, 0), fmt(r.p50, 2), fmt(r.p99, 2), fmt(r.p50 - pacedBase.p50, 2), fmt(r.p99 - pacedBase.p99, 2), fmt(r.cpuUs, 0)]),
        ) +
        `\n\nwrk, 2 threads, ${CONNECTIONS} connections, GET of a 5-byte body, ${ROUNDS} interleaved rounds of ${DURATION} s per target (medians); load tool, proxies and backend share the ` +
        `machine's cores (load average ${load(loadBefore)} when the run began, ${load(loadavg())} at its end: other work shared them too). ` +
        `corral is reached the default way, on the instance's own host (\`hello--admin.localhost\`, sent as \`Host\` to 127.0.0.1), ` +
        `with the host cookie from the login handshake or with a token (\`Authorization: Bearer\`, scope \`proxy:read\`). At full load corral (host cookie) is ${fmt(corralRow.rps / chpRow.rps, 2)}× configurable-http-proxy's requests/s and ` +
        `${fmt((100 * corralRow.rps) / base.rps, 0)}% of direct, and spends ${fmt(chpRow.cpuUs / corralRow.cpuUs, 2)}× less CPU per ` +
        `request than configurable-http-proxy (CPU per request is the steadier number when the machine is shared). Paced, corral adds ` +
        `${fmt(pacedCorral.p50 - pacedBase.p50, 2)} ms at p50 and ${fmt(pacedCorral.p99 - pacedBase.p99, 2)} ms at p99.${nginxNote}`,
    };

    // Idle WebSockets: each costs corral two fds (client and upstream), so the count is
    // capped by the process's fd limit.
    const pid = corral.pid!;
    const limit = openFilesLimit(pid);
    const n = Math.min(10_000, Math.floor((limit - 500) / 2));
    const before = usage(pid);
    const { sockets, failed } = await openSockets(port, host, token, n);
    await new Promise((r) => setTimeout(r, 2000));
    const open = usage(pid);
    for (const s of sockets) s.destroy();
    // Give corral up to 30 s to notice every close (the machine may be busy), then measure.
    const closedAt = Date.now();
    while (usage(pid).fds > before.fds + 10 && Date.now() - closedAt < 30_000) await new Promise((r) => setTimeout(r, 250));
    const settleSeconds = (Date.now() - closedAt) / 1000;
    const after = usage(pid);
    const ws: BenchSection = {
      title: 'Proxy: idle WebSockets held by corral',
      markdown:
        table(
          ['', 'corral RSS MB', 'corral open fds'],
          [
            ['before', fmt(before.rssMb), before.fds],
            [`${sockets.length} idle WebSockets open`, fmt(open.rssMb), open.fds],
            [`after they closed (${fmt(settleSeconds)} s later)`, fmt(after.rssMb), after.fds],
          ],
        ) +
        `\n\nThe WebSockets go to the instance host with a token (scope \`proxy:write\`), 250 handshakes at a time` +
        (failed
          ? `; ${failed} of ${n} handshakes got no 101 and are not counted: the backend's end closed them unanswered (its port is relayed ` +
            'into its network namespace by pasta, which holds several descriptors per connection and likely ran out of them)'
          : '') +
        `. Each proxied WebSocket holds two sockets in corral; corral ran with an open-files limit of ${limit}` +
        (n < 10_000
          ? `, so ${n} is the most it can hold (10,000 needs \`ulimit -n\` ≥ 20,500; this machine's hard limit could not be raised: prlimit needs CAP_SYS_RESOURCE).`
          : ' (`LimitNOFILE=65536` in its systemd unit does the same).'),
    };
    return [http, ws];
  } finally {
    for (const c of children.reverse()) await stopChild(c);
    await rm(data, { recursive: true, force: true });
  }
};

export default bench;
