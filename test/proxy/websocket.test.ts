/** WebSockets through the proxy on an instance host: echoed both ways, checked at upgrade, closed on logout. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { login } from '../helpers/server.js';
import { hostCookie, hostName, hostOrigin, loopbackLookup, proxyWorld, type ProxyWorld } from './fixtures.js';

let w: ProxyWorld;
beforeAll(async () => {
  w = await proxyWorld();
});
afterAll(() => w.close());

const APP = hostName('app', 'alice');
const wsUrl = (path: string) => `${hostOrigin(w.server, APP).replace(/^http/, 'ws')}${path}`;

/** Opens a socket and collects its messages; resolves once open (or rejects with the status). */
function open(path: string, headers: Record<string, string>): Promise<{ ws: WebSocket; messages: string[]; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(path), { headers, lookup: loopbackLookup });
    const messages: string[] = [];
    const closed = new Promise<void>((r) => ws.once('close', () => r()));
    ws.on('message', (m) => messages.push(m.toString()));
    ws.once('open', () => resolve({ ws, messages, closed }));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`status ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

describe('proxied WebSockets', () => {
  it('echo text and binary frames and pass the user', async () => {
    const { ws, messages } = await open('/ws', { cookie: w.aliceApp });
    ws.send('ping');
    await expect.poll(() => messages).toEqual(['hello alice', 'ping']);
    const bin = await new Promise<Buffer>((r) => {
      ws.once('message', (m) => r(m as Buffer));
      ws.send(Buffer.from([1, 2, 3]));
    });
    expect([...bin]).toEqual([1, 2, 3]);
    ws.close();
  });

  it('are refused at upgrade without a credential, to another user, and to a token without the proxy scope', async () => {
    await expect(open('/ws', {})).rejects.toThrow('status 401');
    await expect(open('/ws', { authorization: `Bearer ${w.bob.token}` })).rejects.toThrow('status 404');
    // The main session cookie is no credential on an instance host.
    await expect(open('/ws', { cookie: w.alice.cookie })).rejects.toThrow('status 401');
  });

  it('accept ?token= and do not pass it on', async () => {
    const { ws, messages } = await open(`/ws?token=${w.alice.token}`, {});
    await expect.poll(() => messages).toEqual(['hello alice']);
    ws.close();
  });

  it('close when the main session logs out through the API', async () => {
    const s = await login(w.server.url, 'alice', 'alice-password');
    const { ws, messages, closed } = await open('/ws', { cookie: await hostCookie(w.server, s.cookie, APP) });
    await expect.poll(() => messages).toEqual(['hello alice']);
    const out = await fetch(`${w.server.url}/api/v1/logout`, { method: 'POST', headers: { cookie: s.cookie, 'x-csrf-token': s.csrfToken } });
    expect(out.status).toBe(204);
    await closed;
    expect(ws.readyState).toBe(WebSocket.CLOSED);
  });

  it('close when the token is revoked', async () => {
    const res = await fetch(`${w.server.url}/api/v1/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${w.alice.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'ws-token', scopes: ['proxy:write'] }),
    });
    const { token, info } = (await res.json()) as { token: string; info: { id: string } };
    const { closed } = await open('/ws', { authorization: `Bearer ${token}` });
    const del = await fetch(`${w.server.url}/api/v1/tokens/${info.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${w.alice.token}` } });
    expect(del.status).toBeLessThan(300);
    await closed;
  });

  it('stay open while the session lives', async () => {
    const { ws } = await open('/ws', { cookie: w.aliceApp });
    await new Promise((r) => setTimeout(r, 1000)); // several re-checks
    expect(ws.readyState).toBe(WebSocket.OPEN);
    ws.close();
  });
});
