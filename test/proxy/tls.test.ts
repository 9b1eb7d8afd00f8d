/** Under TLS: HSTS on corral's pages and proxied responses, X-Forwarded-Proto https, Secure cookies (the host's too). */
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli } from '../cli/run-cli.js';
import { createUser, login, startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import { echoBackend, FixtureTargets, hostCookie, rawRequest, userId, type Backend } from './fixtures.js';

let server: TestServer;
let echo: Backend;
let cookie: string;
const previous = process.env.NODE_TLS_REJECT_UNAUTHORIZED;

beforeAll(async () => {
  const dir = await tempDir('corral-proxy-tls-');
  const made = await runCli(['cert', '--out', path.join(dir, 'tls'), '--host', 'localhost', '--json']);
  expect(made.code, made.stderr).toBe(0);
  const { key, cert } = JSON.parse(made.stdout) as { key: string; cert: string };
  process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'; // the test's own self-signed certificate
  server = await startTestServer({ tls: { cert, key } });
  echo = await echoBackend();
  await createUser(server, 'alice');
  const targets = new FixtureTargets();
  targets.add({ owner: 'alice', ownerId: await userId(server, 'alice'), name: 'app', ports: [{ name: 'http', port: echo.port }] });
  server.app.proxy.useTargets(targets);
  cookie = (await login(server.url, 'alice', 'alice-password')).cookie;
});
afterAll(async () => {
  await server?.stop();
  await echo?.close();
  if (previous === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
  else process.env.NODE_TLS_REJECT_UNAUTHORIZED = previous;
});

it('sends HSTS on the login page and the API', async () => {
  expect(server.url).toMatch(/^https:/);
  const page = await fetch(`${server.url}/login`);
  expect(page.headers.get('strict-transport-security')).toMatch(/max-age=\d+/);
  expect(page.headers.getSetCookie().find((c) => c.startsWith('corral_csrf='))).toMatch(/Secure/i);
  expect((await fetch(`${server.url}/healthz`)).headers.get('strict-transport-security')).toMatch(/max-age/);
});

it('sends HSTS on proxied responses, tells the app the request came over https, and marks the host cookie Secure', async () => {
  const host = 'app--alice.localhost';
  const start = await rawRequest(server.url, `/host-login?host=app--alice`, { cookie });
  expect(start.headers.location).toMatch(/^https:\/\/app--alice\.localhost:\d+\/_corral\/callback\?code=/);
  const to = new URL(start.headers.location!);
  const done = await rawRequest(server.url, to.pathname + to.search, { host: to.host });
  expect(done.headers['set-cookie']![0]).toMatch(/; Secure/);
  const res = await rawRequest(server.url, '/', { host, cookie: await hostCookie(server, cookie, host) });
  expect(res.status).toBe(200);
  expect(res.headers['strict-transport-security']).toMatch(/max-age/);
  const seen = JSON.parse(res.body) as { headers: Record<string, string> };
  expect(seen.headers['x-forwarded-proto']).toBe('https');
});
