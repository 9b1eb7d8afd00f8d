/** The proxy over the real instances core: a supervised process reached at its own host, stopped and started on demand. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { api, createUser, startTestServer, type TestServer } from '../helpers/server.js';
import { rawRequest } from './fixtures.js';

let server: TestServer;
let token: string;
let auth: Record<string, string>;
// The default apps domain: web--carol.localhost, sent to 127.0.0.1 with the Host header.
const HOST = { host: 'web--carol.localhost' };

// A tiny app: answers with the path and the user the proxy said it was for.
const APP = `require('http').createServer((q, s) => { s.end(JSON.stringify({ url: q.url, user: q.headers['x-corral-user'] })); }).listen(process.env.PORT_HTTP, '127.0.0.1')`;

beforeAll(async () => {
  server = await startTestServer();
  token = await createUser(server, 'carol');
  auth = { ...HOST, authorization: `Bearer ${token}` };
});
afterAll(() => server.stop());

it('reaches a real instance through the proxy, and starts it on demand after a stop', async () => {
  const created = await api(server, token, 'POST', '/api/v1/instances', {
    name: 'web',
    command: [process.execPath, '-e', APP],
    ports: [{ name: 'http' }],
  });
  expect(created.status).toBe(201);
  await expect
    .poll(async () => (await rawRequest(server.url, '/hello?x=1', auth)).body, { timeout: 15_000 })
    .toBe(JSON.stringify({ url: '/hello?x=1', user: 'carol' }));

  const stop = await api(server, token, 'POST', `/api/v1/instances/${created.body.id}/stop`);
  expect(stop.status).toBe(200);
  await expect.poll(async () => (await rawRequest(server.url, '/', auth)).status, { timeout: 15_000 }).toBe(503);

  expect((await api(server, token, 'PUT', '/api/v1/proxy/carol/web', { startOnDemand: true })).status).toBe(200);
  await expect.poll(async () => (await rawRequest(server.url, '/again', auth)).status, { timeout: 15_000 }).toBe(200);
  const shown = await api(server, token, 'GET', `/api/v1/instances/${created.body.id}`);
  expect(shown.body.desiredState).toBe('running');
});
