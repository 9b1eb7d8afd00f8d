/**
 * The proxy's own error pages on an instance host: their "Dashboard" link leads to the main
 * origin's dashboard, not to `/ui/` on the instance host (which is the app's own path).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostName, proxyWorld, type ProxyWorld } from './fixtures.js';

let w: ProxyWorld;
beforeAll(async () => {
  w = await proxyWorld();
});
afterAll(() => w.close());

/** The href of the page's Dashboard link. */
const dashboardLink = (html: string) => /<a href="([^"]*)">Dashboard<\/a>/.exec(html)?.[1];

describe('error pages on an instance host', () => {
  const mainDashboard = () => `http://localhost:${new URL(w.server.url).port}/ui/`;

  it('a bad login link: the Dashboard link is the main origin’s', async () => {
    const r = await w.onHost(hostName('app', 'alice'), '/_corral/callback?code=nope', { accept: 'text/html' });
    expect(r.status).toBe(400);
    expect(dashboardLink(r.body)).toBe(mainDashboard());
  });

  it('an instance the user may not reach (404): the same', async () => {
    const r = await w.onHost(hostName('app', 'alice'), '/', { accept: 'text/html', authorization: `Bearer ${w.bob.token}` });
    expect(r.status).toBe(404);
    expect(dashboardLink(r.body)).toBe(mainDashboard());
  });

  it('an upstream that does not answer (502): the same', async () => {
    w.targets.add({ owner: 'alice', ownerId: w.alice.id, name: 'gone', ports: [{ name: 'http', port: 1 }] });
    const r = await w.onHost(hostName('gone', 'alice'), '/', { accept: 'text/html', cookie: w.aliceApp, authorization: `Bearer ${w.alice.token}` });
    expect(r.status).toBe(502);
    expect(dashboardLink(r.body)).toBe(mainDashboard());
  });
});
