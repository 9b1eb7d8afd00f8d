/**
 * `auth.passkeys.require` at the proxy: a password session that may only register a passkey
 * cannot reach an instance — neither through the host-login handshake nor with the main
 * cookie under path routing — until it registers one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createUser, login, startTestServer, type TestServer } from '../helpers/server.js';
import { SoftAuthenticator } from '../helpers/soft-authenticator.js';
import { APPS_DOMAIN, echoBackend, FixtureTargets, hostCookie, hostName, rawRequest, userId, type Backend } from '../proxy/fixtures.js';

let server: TestServer;
let echo: Backend;
const APP = hostName('app', 'olga');

beforeAll(async () => {
  server = await startTestServer({ proxy: { appsDomain: APPS_DOMAIN, pathRouting: true }, auth: { passkeys: { requireGroups: ['ops'] } } });
  const targets = new FixtureTargets();
  server.app.proxy.useTargets(targets);
  echo = await echoBackend();
  await createUser(server, 'olga');
  await api(server, server.adminToken, 'PUT', '/api/v1/users/olga/groups', { groups: ['ops'] });
  targets.add({ owner: 'olga', ownerId: await userId(server, 'olga'), name: 'app', ports: [{ name: 'http', port: echo.port }] });
}, 60_000);
afterAll(async () => {
  await server?.stop();
  await echo?.close();
});

describe('a password session that must first register a passkey', () => {
  it('reaches no instance until it registers one', async () => {
    const { cookie, csrfToken } = await login(server.url, 'olga', 'olga-password');
    await expect(hostCookie(server, cookie, APP)).rejects.toThrow(/refused: 403/);
    const viaPath = await rawRequest(server.url, '/i/olga/app/', { cookie, accept: 'application/json' });
    expect(viaPath.status).not.toBe(200);

    // Registering a passkey makes the session a full one.
    const auth = new SoftAuthenticator(`http://localhost:${new URL(server.url).port}`);
    const headers = { cookie, 'x-csrf-token': csrfToken };
    const options = await (await fetch(`${server.url}/api/v1/passkeys/registration/options`, { method: 'POST', headers })).json();
    const added = await fetch(`${server.url}/api/v1/passkeys/registration`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ response: auth.create(options) }) });
    expect(added.status).toBe(201);
    expect(await hostCookie(server, cookie, APP)).toMatch(/^corral_host=/);
    // The proxy trusts what it checked for proxy.authCacheMs (1 s), a refusal too.
    await expect.poll(async () => (await rawRequest(server.url, '/i/olga/app/', { cookie, accept: 'application/json' })).status, { timeout: 5000 }).toBe(200);
  });
});
