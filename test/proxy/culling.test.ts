/** The idle culler: stops instances idle past their timeout, spares active ones and those without one. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import { hostName, hostOrigin, loopbackLookup, proxyWorld, type ProxyWorld } from './fixtures.js';

let w: ProxyWorld;
beforeAll(async () => {
  w = await proxyWorld({ cullIntervalSeconds: 0.25 });
});
afterAll(() => w.close());

const settings = (instance: string, body: unknown) =>
  fetch(`${w.server.url}/api/v1/proxy/alice/${instance}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${w.alice.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

it('stops an idle instance, not one with HTTP traffic, not one with WebSocket traffic, not one without a timeout', async () => {
  const ports = [{ name: 'http', port: w.echo.port }];
  const idle = w.targets.add({ owner: 'alice', ownerId: w.alice.id, name: 'idle', ports });
  const busy = w.targets.add({ owner: 'alice', ownerId: w.alice.id, name: 'busy', ports });
  const chatty = w.targets.add({ owner: 'alice', ownerId: w.alice.id, name: 'chatty', ports });
  const forever = w.targets.add({ owner: 'alice', ownerId: w.alice.id, name: 'forever', ports });
  for (const name of ['idle', 'busy', 'chatty']) expect((await settings(name, { idleTimeoutSeconds: 2 })).status).toBe(200);
  expect((await settings('forever', { idleTimeoutSeconds: 0 })).status).toBe(200);

  const auth = { authorization: `Bearer ${w.alice.token}` };
  const ws = new WebSocket(`${hostOrigin(w.server, hostName('chatty', 'alice')).replace(/^http/, 'ws')}/`, { headers: auth, lookup: loopbackLookup });
  await new Promise((r) => ws.once('open', r));
  const t0 = Date.now();
  // Keep busy and chatty active for a while, well past the idle timeout.
  while (Date.now() - t0 < 4500) {
    expect((await w.onHost(hostName('busy', 'alice'), '/', auth)).status).toBe(200);
    ws.send('still here');
    await new Promise((r) => setTimeout(r, 300));
  }
  expect(w.targets.stops).toContain(idle);
  expect(w.targets.stops).not.toContain(busy);
  expect(w.targets.stops).not.toContain(chatty);
  expect(w.targets.stops).not.toContain(forever);
  ws.close();

  // Once quiet, busy goes too.
  await expect.poll(() => w.targets.stops, { timeout: 8000 }).toContain(busy);
  const page = await w.onHost(hostName('idle', 'alice'), '/', auth);
  expect(page.status).toBe(503);
});
