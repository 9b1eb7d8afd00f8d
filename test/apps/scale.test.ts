/**
 * Scale: several copies of `web`, each its own instance with its own port; the proxy spreads
 * requests over the ready ones, a killed copy leaves the rotation until it is back, and a
 * WebSocket stays on the copy it opened.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { api, createUser, startTestServer, type TestServer } from '../helpers/server.js';
import { APPS_DOMAIN, deploy, showApp, viaProxy, waitApp, webApp } from './helpers.js';

let server: TestServer;
let token: string;

/** The web app plus a WebSocket that answers every message with its copy's name. */
const WS_APP = `
const http = require('http');
const crypto = require('crypto');
const copy = process.env.CORRAL_INSTANCE;
const server = http.createServer((q, s) => s.end(JSON.stringify({ copy })));
server.on('upgrade', (req, socket) => {
  const accept = crypto.createHash('sha1').update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  socket.write('HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Accept: ' + accept + '\\r\\n\\r\\n');
  socket.on('data', () => {
    const text = Buffer.from(copy);
    socket.write(Buffer.concat([Buffer.from([0x81, text.length]), text]));
  });
});
server.listen(Number(process.env.PORT), '127.0.0.1');
`;

beforeAll(async () => {
  server = await startTestServer({ proxy: { baseDomain: APPS_DOMAIN }, apps: { drainSeconds: 0 } });
  token = await createUser(server, 'sam');
  const res = await deploy(server, token, 'api', webApp('s1', { files: [{ path: 'server.js', body: WS_APP }] }));
  if (res.status !== 201) throw new Error(JSON.stringify(res.body));
});
afterAll(() => server.stop());

async function copiesAnswering(n: number): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const r = await viaProxy(server, token, 'sam', 'api');
    expect(r.status, r.body).toBe(200);
    const { copy } = JSON.parse(r.body) as { copy: string };
    counts.set(copy, (counts.get(copy) ?? 0) + 1);
  }
  return counts;
}

describe('scale', () => {
  it('web=3: three instances with their own ports; requests reach all three', async () => {
    const scaled = await api(server, token, 'PUT', '/api/v1/apps/api/formation', { web: 3 });
    expect(scaled.status, JSON.stringify(scaled.body)).toBe(200);
    expect(scaled.body.formation).toEqual({ web: 3 });
    const app = await waitApp(server, token, 'api', (a) => a.copies.length === 3 && a.copies.every((c: any) => c.ready));
    expect(app.copies.map((c: any) => c.instance)).toEqual(['api.web.1', 'api.web.2', 'api.web.3']);
    expect(new Set(app.copies.map((c: any) => c.ports[0].hostPort)).size).toBe(3);
    const counts = await copiesAnswering(30);
    expect([...counts.keys()].sort()).toEqual(['api.web.1', 'api.web.2', 'api.web.3']);
    for (const n of counts.values()) expect(n).toBeGreaterThanOrEqual(5);
  });

  it('a killed copy leaves the rotation, is restarted on its own and comes back', async () => {
    const app = await showApp(server, token, 'api');
    const victim = app.copies.find((c: any) => c.instance === 'api.web.2');
    const killed = await api(server, token, 'POST', `/api/v1/instances/${victim.id}/signal`, { signal: 'SIGKILL' });
    expect(killed.status).toBe(200);
    await waitApp(server, token, 'api', (a) => !a.copies.find((c: any) => c.instance === 'api.web.2').ready, 5_000);
    const without = await copiesAnswering(20);
    expect([...without.keys()].sort()).toEqual(['api.web.1', 'api.web.3']);
    const back = await waitApp(server, token, 'api', (a) => a.copies.every((c: any) => c.ready), 15_000);
    expect(back.copies.find((c: any) => c.instance === 'api.web.2').restartCount).toBe(1);
    expect([...(await copiesAnswering(30)).keys()].sort()).toEqual(['api.web.1', 'api.web.2', 'api.web.3']);
  });

  it('a WebSocket stays on the copy it opened', async () => {
    const u = new URL(server.url);
    const ws = new WebSocket(`ws://${u.host}/`, { headers: { host: `api--sam.${APPS_DOMAIN}`, authorization: `Bearer ${token}` } });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const answers: string[] = [];
    for (let i = 0; i < 6; i++) {
      const got = new Promise<string>((resolve) => ws.once('message', (m) => resolve(m.toString())));
      ws.send(`ping ${i}`);
      answers.push(await got);
      // Plain requests in between move the round robin on.
      await viaProxy(server, token, 'sam', 'api');
    }
    ws.close();
    expect(new Set(answers).size).toBe(1);
  });

  it('scaling down stops the extra copies; quotas count copies', async () => {
    const down = await api(server, token, 'PUT', '/api/v1/apps/api/formation', { web: 1 });
    expect(down.status).toBe(200);
    const app = await waitApp(server, token, 'api', (a) => a.copies.length === 1);
    expect(app.copies[0].instance).toBe('api.web.1');
    expect([...(await copiesAnswering(5)).keys()]).toEqual(['api.web.1']);
    const usage = await api(server, token, 'GET', '/api/v1/quotas');
    expect(usage.body.use.instances).toBe(1);
  });
});
