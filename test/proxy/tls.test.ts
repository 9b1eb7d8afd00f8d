/** Under TLS: HSTS on corral's pages and proxied responses, X-Forwarded-Proto https, Secure cookies. */
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli } from '../cli/run-cli.js';
import { createUser, login, startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import { echoBackend, FixtureTargets, userId, type Backend } from './fixtures.js';

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

it('sends HSTS on proxied responses and tells the app the request came over https', async () => {
  const res = await fetch(`${server.url}/i/alice/app/`, { headers: { cookie } });
  expect(res.status).toBe(200);
  expect(res.headers.get('strict-transport-security')).toMatch(/max-age/);
  const seen = (await res.json()) as { headers: Record<string, string> };
  expect(seen.headers['x-forwarded-proto']).toBe('https');
});
