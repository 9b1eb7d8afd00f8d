/**
 * The relay core with stand-in connections: what a peer sends before pairing is held up to
 * the buffer limit and then not read, and a slow receiver stops the sender being read.
 */
import { describe, expect, it } from 'vitest';
import { MemoryClaims, Relay, type EventFormat, type Frame, type RelayEnd } from '../../src/core/relay/index.js';

class FakeEnd implements RelayEnd {
  sent: Frame[] = [];
  /** Callbacks of frames not yet "written" (when holding). */
  unsent: (() => void)[] = [];
  paused = false;
  pauses = 0;
  closedWith: number | undefined;
  constructor(private readonly hold = false) {}
  send(frame: Frame, sent: () => void): void {
    this.sent.push(frame);
    if (this.hold) this.unsent.push(sent);
    else sent();
  }
  pause(): void {
    this.paused = true;
    this.pauses++;
  }
  resume(): void {
    this.paused = false;
  }
  close(code: number): void {
    this.closedWith = code;
  }
  texts(): string[] {
    return this.sent.map((f) => f.data.toString());
  }
}

const format: EventFormat = { host: (e) => JSON.stringify(e), peer: (e) => JSON.stringify(e) };
const config = { peerWaitSeconds: 60, bufferFrames: 100, bufferBytes: 1 << 20, highWaterBytes: 4096, maxPeersPerChannel: 2, claimDays: 30 };
const text = (s: string): Frame => ({ data: Buffer.from(s), binary: false });

describe('relay channel', () => {
  it('buffers up to bufferFrames before pairing, then stops reading the peer until it is paired', () => {
    const relay = new Relay(config);
    const peerEnd = new FakeEnd();
    const peer = relay.openPeer('c', 't', peerEnd, format);
    for (let i = 0; i < 99; i++) peer.received(text(`m${i}`));
    expect(peerEnd.paused).toBe(false);
    peer.received(text('m99'));
    expect(peerEnd.paused).toBe(true);

    const host = new FakeEnd();
    relay.openHost('c', null, host, format);
    expect(JSON.parse(host.texts()[0]!)).toEqual({ kind: 'peer-connected', peer: peer.id, type: 't' });
    const link = new FakeEnd();
    relay.openLink('c', null, peer.id, link);
    expect(link.texts()).toEqual(Array.from({ length: 100 }, (_, i) => `m${i}`));
    expect(peerEnd.paused).toBe(false);
    relay.close();
  });

  it('stops reading the sender while more than highWaterBytes wait for a slow receiver', () => {
    const relay = new Relay(config);
    relay.openHost('c', 'owner', new FakeEnd(), format);
    const peerEnd = new FakeEnd();
    const peer = relay.openPeer('c', 't', peerEnd, format);
    const link = new FakeEnd(true);
    relay.openLink('c', 'owner', peer.id, link);
    const kib = { data: Buffer.alloc(1024), binary: true };
    for (let i = 0; i < 4; i++) peer.received(kib);
    expect(peerEnd.paused).toBe(false);
    peer.received(kib);
    expect(peerEnd.paused).toBe(true);
    // The receiver drains to half the mark: the sender is read again.
    for (const done of link.unsent.splice(0, 3)) done();
    expect(peerEnd.paused).toBe(false);
    expect(link.sent.filter((f) => f.binary)).toHaveLength(5);
    relay.close();
  });

  it('lets only the host’s owner link, refuses a full channel, and forgets empty channels', () => {
    const relay = new Relay(config);
    const host = relay.openHost('c', 'alice', new FakeEnd(), format);
    const aEnd = new FakeEnd();
    const a = relay.openPeer('c', 't', aEnd, format);
    const b = relay.openPeer('c', 't', new FakeEnd(), format);
    expect(() => relay.openPeer('c', 't', new FakeEnd(), format)).toThrow(expect.objectContaining({ code: 'relay_channel_full' }));
    expect(() => relay.checkLink('c', 'mallory', a.id)).toThrow(expect.objectContaining({ code: 'relay_peer_not_found' }));
    expect(() => relay.openLink('nowhere', 'alice', a.id, new FakeEnd())).toThrow(expect.objectContaining({ status: 404 }));
    expect(relay.list()).toEqual([{ key: 'c', host: true, owner: 'alice', peers: expect.any(Array) }]);
    // The host leaves: its peers are closed (going away); once they are gone, so is the channel.
    host.closed();
    expect(aEnd.closedWith).toBe(1001);
    a.closed();
    b.closed();
    expect(relay.list()).toEqual([]);
  });

  it('keeps a channel its first host claimed for that user, after the host leaves, until the claim lapses', async () => {
    const claims = new MemoryClaims();
    const relay = new Relay({ ...config, claimDays: 1 }, claims);
    await relay.claimHost('c', 'alice');
    const host = relay.openHost('c', 'alice', new FakeEnd(), format);
    await expect(relay.claimHost('c', 'bob')).rejects.toMatchObject({ code: 'relay_channel_owned', status: 403 });
    await expect(relay.claimHost('c', 'alice')).rejects.toMatchObject({ code: 'relay_host_connected', status: 409 });
    host.closed();
    await expect(relay.claimHost('c', 'bob')).rejects.toMatchObject({ code: 'relay_channel_owned' });
    await expect(relay.claimHost('c', null)).rejects.toMatchObject({ code: 'relay_channel_owned' });
    await relay.claimHost('c', 'alice');
    // A day and a bit after alice last used it, the name is free again.
    await new Promise((r) => setTimeout(r, 5));
    expect(await claims.holder('c', Date.now() + 86_400_000, 86_400_000)).toBeNull();
    expect(await claims.claim('c', 'bob', Date.now() + 86_400_000 + 1, 86_400_000)).toBe('bob');
  });
});
