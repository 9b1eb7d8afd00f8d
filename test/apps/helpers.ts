/**
 * Shared helpers of the app tests: archives of a tiny Node web app, deploys through the API
 * (multipart), requests through the proxy to the app's host (with a bearer token), and a
 * poller that keeps requesting while something else happens.
 */
import http from 'node:http';
import { tarBytes, type TarEntry } from '../sources/helpers/archives.js';
import { api, type TestServer } from '../helpers/server.js';

export const APPS_DOMAIN = 'apps.test';

/** A web app that answers with its release tag, its copy's name and chosen env vars. */
export const WEB_APP = `
const http = require('http');
http.createServer((q, s) => {
  s.setHeader('content-type', 'application/json');
  s.end(JSON.stringify({ tag: process.env.TAG || require('./tag.json'), copy: process.env.CORRAL_INSTANCE, greeting: process.env.GREETING || null, unbuffered: process.env.PYTHONUNBUFFERED || null }));
}).listen(Number(process.env.PORT), '127.0.0.1', () => console.log('listening on ' + process.env.PORT));
`;

/** An archive of the web app tagged `tag`, with a Procfile (default: `web: node server.js`) and extra files. */
export function webApp(tag: string, opts: { procfile?: string; files?: TarEntry[] } = {}): Buffer {
  const entries: TarEntry[] = [
    { path: 'Procfile', body: opts.procfile ?? 'web: node server.js\n' },
    { path: 'server.js', body: WEB_APP },
    { path: 'tag.json', body: JSON.stringify(tag) },
  ];
  // Extra files replace the defaults of the same path.
  const extra = opts.files ?? [];
  return tarBytes([...entries.filter((e) => !extra.some((x) => x.path === e.path)), ...extra], { gzip: true });
}

/** POST /apps/{name}/releases with an `options` field and the archive. */
export async function deploy(server: TestServer, token: string, name: string, archive: Buffer, options?: unknown): Promise<{ status: number; body: any }> {
  const form = new FormData();
  if (options !== undefined) form.append('options', JSON.stringify(options));
  form.append('archive', new Blob([new Uint8Array(archive)]), 'app.tar.gz');
  const res = await fetch(`${server.url}/api/v1/apps/${name}/releases`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: form });
  return { status: res.status, body: await res.json() };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

/** A request through the proxy to `{app}--{owner}.apps.test`. */
export function viaProxy(server: TestServer, token: string, owner: string, app: string, path = '/'): Promise<{ status: number; body: string }> {
  const u = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: u.hostname, port: u.port, path, agent, headers: { host: `${app}--${owner}.${APPS_DOMAIN}`, authorization: `Bearer ${token}` } },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** The app's answer as JSON (throws with the status and body when it is not a 200). */
export async function ask(server: TestServer, token: string, owner: string, app: string): Promise<{ tag: string; copy: string; greeting: string | null; unbuffered: string | null }> {
  const r = await viaProxy(server, token, owner, app);
  if (r.status !== 200) throw new Error(`${r.status} ${r.body}`);
  return JSON.parse(r.body);
}

/** Requests the app back to back until stopped; records every answer (status and tag). */
export function poll(server: TestServer, token: string, owner: string, app: string) {
  const seen: { status: number; tag?: string; copy?: string; body: string }[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const r = await viaProxy(server, token, owner, app).catch((e: Error) => ({ status: 0, body: e.message }));
      let parsed: { tag?: string; copy?: string } = {};
      try {
        parsed = JSON.parse(r.body);
      } catch {
        /* an error page */
      }
      seen.push({ status: r.status, body: r.body.slice(0, 200), ...(parsed.tag && { tag: parsed.tag }), ...(parsed.copy && { copy: parsed.copy }) });
      await new Promise((res) => setTimeout(res, 10));
    }
  })();
  return {
    seen,
    async stop() {
      running = false;
      await loop;
      return seen;
    },
  };
}

export async function showApp(server: TestServer, token: string, name: string): Promise<any> {
  const res = await api(server, token, 'GET', `/api/v1/apps/${name}`);
  if (res.status !== 200) throw new Error(`show ${name}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** Polls the app document until `pred` holds. */
export async function waitApp(server: TestServer, token: string, name: string, pred: (a: any) => boolean, timeoutMs = 20_000): Promise<any> {
  const until = Date.now() + timeoutMs;
  let last: any;
  while (Date.now() < until) {
    last = await showApp(server, token, name);
    if (pred(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting; last: ${JSON.stringify(last)}`);
}
