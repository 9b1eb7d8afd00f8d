/**
 * The native relay, used as its docs say: a host on `WS /api/v1/relay/{channel}?role=host`,
 * typed peers, and the host's link per peer; frames both ways, text and binary kept.
 */
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { api, createToken, createUser, login, startTestServer, type TestServer } from '../helpers/server.js';
import { loadConfig } from '../../src/core/config.js';
import { startServer } from '../../src/server.js';
import { connect, refusedWith, send, type Client } from './ws-client.js';

let server: TestServer;
let alice: string;
let bob: string;
let channelNo = 0;

beforeAll(async () => {
  server = await startTestServer({ relay: { peerWaitSeconds: 2 } });
  alice = await createUser(server, 'alice');
  bob = await createUser(server, 'bob');
});
afterAll(() => server.stop());

const url = (channel: string, query: string, token: string) =>
  `${server.url.replace(/^http/, 'ws')}/api/v1/relay/${channel}?${query}${query ? '&' : ''}token=${token}`;
const fresh = () => `ch-${++channelNo}`;

/** A host with one linked peer of type `type`. */
async function paired(channel: string, type = 'sensor'): Promise<{ host: Client; peer: Client; link: Client; peerId: string }> {
  const host = await connect(url(channel, 'role=host', alice));
  const peer = await connect(url(channel, `type=${type}`, bob));
  const hello = await host.json();
  expect(hello).toMatchObject({ event: 'peer-connected', type });
  const link = await connect(url(channel, `role=link&peer=${hello.peer}`, alice));
  expect(await peer.json()).toEqual({ event: 'host-connected' });
  return { host, peer, link, peerId: hello.peer };
}

describe('native relay', () => {
  it('pairs a host with a typed peer and relays text and binary frames both ways', async () => {
    const channel = fresh();
    const { host, peer, link, peerId } = await paired(channel);
    await send(peer, 'hello host');
    const t = await link.next();
    expect([t.text, t.binary]).toEqual(['hello host', false]);
    await send(link, Buffer.from([0, 1, 2, 255]));
    const b = await peer.next();
    expect(b.binary).toBe(true);
    expect([...b.data]).toEqual([0, 1, 2, 255]);
    await send(peer, Buffer.from([9, 8]));
    expect(await link.next()).toMatchObject({ binary: true, data: Buffer.from([9, 8]) });
    await send(link, 'hello peer');
    expect(await peer.next()).toMatchObject({ text: 'hello peer', binary: false });

    peer.ws.close();
    expect(await host.json()).toEqual({ event: 'peer-disconnected', peer: peerId });
    expect((await link.closed).code).toBe(1000);
    host.ws.close();
  });

  it('keeps what a peer sends before it is paired, in order', async () => {
    const channel = fresh();
    const peer = await connect(url(channel, 'type=early', bob));
    for (const m of ['one', 'two', 'three']) await send(peer, m);
    const host = await connect(url(channel, 'role=host', alice));
    const hello = await host.json();
    expect(hello).toMatchObject({ event: 'peer-connected', type: 'early' });
    const link = await connect(url(channel, `role=link&peer=${hello.peer}`, alice));
    expect((await Promise.all([link.next(), link.next(), link.next()])).map((r) => r.text)).toEqual(['one', 'two', 'three']);
    expect(await peer.json()).toEqual({ event: 'host-connected' });
    host.ws.close();
    await peer.closed;
  });

  it('tells a peer when its link closes, lets the host pair again, and closes peers when the host leaves', async () => {
    const channel = fresh();
    const { host, peer, link, peerId } = await paired(channel);
    link.ws.close();
    expect(await peer.json()).toEqual({ event: 'host-disconnected' });
    const again = await connect(url(channel, `role=link&peer=${peerId}`, alice));
    expect(await peer.json()).toEqual({ event: 'host-connected' });
    await send(again, 'back');
    expect((await peer.next()).text).toBe('back');
    host.ws.close();
    expect((await peer.closed).code).toBe(1001);
    expect((await again.closed).code).toBe(1001);
  });

  it('closes a peer nobody pairs with in time (4008)', async () => {
    const peer = await connect(url(fresh(), 'type=lonely', bob));
    const closed = await peer.closed;
    expect(closed.code).toBe(4008);
  });

  it('refuses before the handshake: no token, a second host, a foreign or unknown or paired peer', async () => {
    const channel = fresh();
    const base = `${server.url.replace(/^http/, 'ws')}/api/v1/relay/${channel}`;
    expect(await refusedWith(`${base}?role=host`)).toBe(401);
    expect(await refusedWith(`${base}?type=x`)).toBe(401);
    expect(await refusedWith(`${base}?role=host&token=not-a-jwt`)).toBe(401);
    const { host, peerId } = await paired(channel);
    expect(await refusedWith(url(channel, 'role=host', bob))).toBe(403);
    expect(await refusedWith(url(channel, 'role=host', alice))).toBe(409);
    expect(await refusedWith(url(channel, `role=link&peer=${peerId}`, bob))).toBe(404);
    expect(await refusedWith(url(channel, `role=link&peer=${peerId}`, alice))).toBe(409);
    expect(await refusedWith(url(channel, 'role=link&peer=00000000-0000-4000-8000-000000000000', alice))).toBe(404);
    expect(await refusedWith(url(fresh(), 'role=link&peer=00000000-0000-4000-8000-000000000000', alice))).toBe(404);
    host.ws.close();
  });

  it('keeps a channel its user’s after their host leaves: another user’s host is refused and never gets the next peer', async () => {
    const channel = fresh();
    const first = await connect(url(channel, 'role=host', alice));
    first.ws.close();
    await first.closed;
    await vi.waitFor(() => expect(server.corral.relay.list().some((c) => c.key === `api/${channel}`)).toBe(false));
    // The attack: bob takes the host side of alice's channel in the gap.
    const refused = await api(server, bob, 'GET', `/api/v1/relay/${channel}?role=host`);
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('relay_channel_owned');
    const peer = await connect(url(channel, 'type=customer', bob));
    await send(peer, 'for alice only');
    expect(await refusedWith(url(channel, 'role=host', bob))).toBe(403);
    // Bob cannot link with the waiting peer either; alice's host can and gets the frame.
    const waiting = server.corral.relay.list().find((c) => c.key === `api/${channel}`)!.peers[0]!.id;
    expect(await refusedWith(url(channel, `role=link&peer=${waiting}`, bob))).toBe(404);
    const host = await connect(url(channel, 'role=host', alice));
    expect(await host.json()).toMatchObject({ event: 'peer-connected', peer: waiting, type: 'customer' });
    const link = await connect(url(channel, `role=link&peer=${waiting}`, alice));
    expect((await link.next()).text).toBe('for alice only');
    host.ws.close();
    await peer.closed;
  });

  it('remembers who owns a channel across a restart', async () => {
    const first = await startTestServer();
    const carol = await createUser(first, 'carol');
    const dave = await createUser(first, 'dave');
    const at = (s: { url: string }, token: string) => `${s.url.replace(/^http/, 'ws')}/api/v1/relay/kept?role=host&token=${token}`;
    (await connect(at(first, carol))).ws.close();
    await first.stop({ keepData: true });
    const again = await startServer(loadConfig({ flags: { host: '127.0.0.1', port: 0, logLevel: 'silent', data: first.data } }));
    try {
      expect(await refusedWith(at(again, dave))).toBe(403);
      (await connect(at(again, carol))).ws.close();
    } finally {
      await again.close();
      await rm(first.data, { recursive: true, force: true });
    }
  });

  it('refuses a token without instances:write as host, but takes it as a peer', async () => {
    const readOnly = await createToken(server.url, await login(server.url, 'alice', 'alice-password'), 'ro', ['instances:read']);
    const channel = fresh();
    expect(await refusedWith(url(channel, 'role=host', readOnly))).toBe(403);
    const peer = await connect(url(channel, 'type=reader', readOnly));
    peer.ws.close();
  });

  it('answers bad input with 400 naming the field', async () => {
    const bad = async (path: string) => {
      const res = await api(server, alice, 'GET', path);
      return [res.status, res.body?.error?.code, res.body?.error?.message];
    };
    expect(await bad('/api/v1/relay/bad%20name?role=host')).toEqual([400, 'validation_failed', expect.stringContaining('params.channel')]);
    expect(await bad('/api/v1/relay/ok?role=boss')).toEqual([400, 'validation_failed', expect.stringContaining('querystring.role')]);
    expect(await bad('/api/v1/relay/ok?role=link')).toEqual([400, 'validation_failed', expect.stringContaining('querystring.peer')]);
    expect(await bad('/api/v1/relay/ok?role=link&peer=nope')).toEqual([400, 'validation_failed', expect.stringContaining('querystring.peer')]);
    expect(await bad('/api/v1/relay/ok?role=host&peer=00000000-0000-4000-8000-000000000000')).toEqual([400, 'validation_failed', expect.stringContaining('querystring.peer')]);
    expect(await bad('/api/v1/relay/ok?role=host&type=x')).toEqual([400, 'validation_failed', expect.stringContaining('querystring.type')]);
    expect(await bad('/api/v1/relay/ok?type=has%20space')).toEqual([400, 'validation_failed', expect.stringContaining('querystring.type')]);
    expect(await bad('/api/v1/relay/ok?colour=red')).toEqual([400, 'validation_failed', expect.stringContaining('colour')]);
  });
});
