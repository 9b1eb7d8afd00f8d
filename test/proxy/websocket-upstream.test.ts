/**
 * A WebSocket handshake whose upstream accepts the connection and then closes it without a
 * word gets a 502 from the proxy, not a silently closed socket (a client cannot tell that
 * apart from a network failure, and would retry blindly).
 */
import net from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { droppingBackend, hostName, proxyWorld, type Backend, type ProxyWorld } from './fixtures.js';

let w: ProxyWorld;
let dropping: Backend;
beforeAll(async () => {
  w = await proxyWorld();
  dropping = await droppingBackend();
  w.targets.add({ owner: 'alice', ownerId: w.alice.id, name: 'dropper', ports: [{ name: 'http', port: dropping.port }] });
});
afterAll(async () => {
  await w.close();
  await dropping.close();
});

/** A raw handshake to 127.0.0.1 with the instance host in `Host`; the first line of the answer, or 'closed' if none came. */
function handshake(host: string, token: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(new URL(w.server.url).port), '127.0.0.1', () =>
      s.write(
        `GET /ws HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n` +
          `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer ${token}\r\n\r\n`,
      ),
    );
    let first: string | undefined;
    s.once('data', (d: Buffer) => (first = d.toString().split('\r\n')[0]));
    s.on('close', () => resolve(first ?? 'closed'));
    s.on('error', reject);
  });
}

it('an upstream that closes the handshake unanswered: 502', async () => {
  expect(await handshake(hostName('dropper', 'alice'), w.alice.token)).toBe('HTTP/1.1 502 Bad Gateway');
});
