/** What reaches the upstream and what comes back: headers, credentials, bodies, failures. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { droppingBackend, hangingBackend, hostFetch, hostName, hostOrigin, proxyWorld, tricklingBackend, type Backend, type ProxyWorld } from './fixtures.js';

let w: ProxyWorld;
let hang: Backend;
let drop: Backend;
let trickle: Awaited<ReturnType<typeof tricklingBackend>>;
beforeAll(async () => {
  w = await proxyWorld();
  hang = await hangingBackend();
  drop = await droppingBackend();
  trickle = await tricklingBackend();
  w.targets.add({ owner: 'alice', ownerId: w.alice.id, name: 'trickles', ports: [{ name: 'http', port: trickle.port }] });
  w.targets.add({ owner: 'alice', ownerId: w.alice.id, name: 'hangs', ports: [{ name: 'http', port: hang.port }] });
  w.targets.add({ owner: 'alice', ownerId: w.alice.id, name: 'drops', ports: [{ name: 'http', port: drop.port }] });
  w.targets.add({ owner: 'alice', ownerId: w.alice.id, name: 'down', ports: [{ name: 'http', port: 1 }] });
});
afterAll(async () => {
  await w.close();
  await hang.close();
  await drop.close();
  await trickle.close();
});

const APP = hostName('app', 'alice');
const on = (instance: string, path: string, headers: Record<string, string>) => w.onHost(hostName(instance, 'alice'), path, headers);
const url = (instance: string, path: string) => `${hostOrigin(w.server, hostName(instance, 'alice'))}${path}`;
const seen = async (path: string, headers: Record<string, string>) => {
  const r = await w.onHost(APP, path, headers);
  expect(r.status).toBe(200);
  return JSON.parse(r.body) as { url: string; headers: Record<string, string>; body: string };
};

describe('headers', () => {
  it('strips identity headers a client sends and sets its own', async () => {
    const s = await seen('/', {
      cookie: w.aliceApp,
      'x-corral-user': 'admin',
      'x-forwarded-for': '6.6.6.6',
      'x-forwarded-host': 'evil.example',
      'x-forwarded-proto': 'https',
      'x-forwarded-prefix': '/evil',
      forwarded: 'for=6.6.6.6',
      'x-real-ip': '6.6.6.6',
    });
    expect(s.headers['x-corral-user']).toBe('alice');
    expect(s.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(s.headers['x-forwarded-proto']).toBe('http');
    expect(s.headers['x-forwarded-host']).toBe(APP);
    expect(s.headers['x-forwarded-prefix']).toBeUndefined();
    expect(s.headers.forwarded).toBeUndefined();
    expect(s.headers['x-real-ip']).toBeUndefined();
  });

  it("never forwards corral's cookies (the host's, the session's, the CSRF one), but keeps the app's own", async () => {
    const s = await seen('/', { cookie: `theme=dark; ${w.aliceApp}; ${w.alice.cookie};corral_csrf=abc; app_cookie=1` });
    expect(s.headers.cookie).toBe('theme=dark; app_cookie=1');
    const only = await seen('/', { cookie: w.aliceApp });
    expect(only.headers.cookie).toBeUndefined();
  });

  it('never forwards the token, from the header or from ?token=', async () => {
    const h = await seen('/x', { authorization: `Bearer ${w.alice.token}` });
    expect(h.headers.authorization).toBeUndefined();
    const q = await seen(`/x?a=1&token=${w.alice.token}&b=2`, {});
    expect(q.url).toBe('/x?a=1&b=2');
    expect(JSON.stringify(q)).not.toContain(w.alice.token);
    const encoded = await seen(`/x?%74oken=${w.alice.token}&b=2`, {});
    expect(encoded.url).toBe('/x?b=2');
    const twice = await seen(`/x?token=${w.alice.token}&token=other`, {});
    expect(twice.url).toBe('/x');
  });

  it('drops headers named in Connection', async () => {
    const s = await seen('/', { cookie: w.aliceApp, connection: 'close, x-secret', 'x-secret': '1' });
    expect(s.headers['x-secret']).toBeUndefined();
  });

  it('adds the security headers to proxied responses and passes the app’s cookies down', async () => {
    const r = await w.onHost(APP, '/', { cookie: w.aliceApp });
    expect(r.headers['x-frame-options']).toBe('SAMEORIGIN');
    expect(r.headers['content-security-policy']).toBeUndefined(); // an instance host is an origin of its own: no sandbox needed
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['set-cookie']).toEqual(['app_cookie=1; Path=/']);
  });

  it('refuses oversized headers before anything is forwarded', async () => {
    const r = await w.onHost(APP, '/', { cookie: w.aliceApp, 'x-big': 'a'.repeat(64 * 1024) }).catch(
      (e: Error) => ({ status: 0, error: e.message }),
    );
    expect([431, 0]).toContain(r.status); // node answers 431 (or resets the connection)
  });
});

describe('bodies', () => {
  it('streams a large request body up and the response down', async () => {
    const big = 'x'.repeat(3 * 1024 * 1024); // above the API body limit: the proxy does not buffer or cap
    const res = await hostFetch(url('app', '/upload'), {
      method: 'POST',
      headers: { authorization: `Bearer ${w.alice.token}`, 'content-type': 'text/plain' },
      body: big,
    });
    expect(res.status).toBe(200);
    const s = (await res.json()) as { method: string; body: string };
    expect(s.method).toBe('POST');
    expect(s.body.length).toBe(big.length);
  });

  it('streams a chunked request body', async () => {
    const chunks = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode('one,'));
        c.enqueue(new TextEncoder().encode('two'));
        c.close();
      },
    });
    const res = await hostFetch(url('app', '/'), {
      method: 'PUT',
      headers: { authorization: `Bearer ${w.alice.token}` },
      body: chunks,
      duplex: 'half',
    });
    expect(((await res.json()) as { body: string }).body).toBe('one,two');
  });
});

describe('streamed responses', () => {
  // Each part must reach the client while the upstream is still sending: the proxy never
  // holds a chunk back waiting for the next one (server-sent events, progress output).
  for (const [kind, path] of [['chunked', '/'], ['with a Content-Length', '/length']] as const) {
    it(`passes each part on as it comes (${kind})`, async () => {
      const res = await hostFetch(url('trickles', path), { headers: { authorization: `Bearer ${w.alice.token}` } });
      expect(res.status).toBe(200);
      const reader = res.body!.getReader();
      const first = await reader.read();
      expect(new TextDecoder().decode(first.value)).toBe('first-');
      trickle.release();
      let rest = '';
      for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
      expect(rest).toBe('second');
    });
  }
});

describe('upstream failures', () => {
  it('answers 504 when the upstream hangs', async () => {
    const t = Date.now();
    const r = await on('hangs', '/', { authorization: `Bearer ${w.alice.token}` });
    expect(r.status).toBe(504);
    expect(Date.now() - t).toBeGreaterThanOrEqual(900);
  });

  it('answers 502 when the upstream drops the connection', async () => {
    const r = await on('drops', '/', { authorization: `Bearer ${w.alice.token}` });
    expect(r.status).toBe(502);
  });

  it('answers 502 with a page for a browser when nothing listens', async () => {
    const r = await on('down', '/', { authorization: `Bearer ${w.alice.token}`, accept: 'text/html' });
    expect(r.status).toBe(502);
    expect(r.headers['content-type']).toContain('text/html');
    expect(r.body).toContain('not answering');
  });

  it('keeps serving after failures', async () => {
    expect((await on('app', '/', { authorization: `Bearer ${w.alice.token}` })).status).toBe(200);
  });
});

describe('instance state', () => {
  it('answers 503 for a stopped instance and starts one that allows start on demand', async () => {
    const id = w.targets.add({ owner: 'alice', ownerId: w.alice.id, name: 'sleepy', state: 'stopped', ports: [{ name: 'http', port: w.echo.port }] });
    const stopped = await on('sleepy', '/', { authorization: `Bearer ${w.alice.token}`, accept: 'text/html' });
    expect(stopped.status).toBe(503);
    expect(stopped.body).toContain('not running');
    expect(w.targets.starts).not.toContain(id);

    const put = await fetch(`${w.server.url}/api/v1/proxy/alice/sleepy`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${w.alice.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ startOnDemand: true }),
    });
    expect(put.status).toBe(200);
    const starting = await on('sleepy', '/', { authorization: `Bearer ${w.alice.token}`, accept: 'text/html' });
    expect(starting.status).toBe(503);
    expect(starting.headers.refresh).toBe('2');
    expect(starting.body).toContain('starting');
    await expect.poll(() => w.targets.starts).toContain(id);
    await expect
      .poll(async () => (await on('sleepy', '/', { authorization: `Bearer ${w.alice.token}` })).status, { timeout: 5000 })
      .toBe(200);
  });
});
