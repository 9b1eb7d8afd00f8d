/**
 * `/metrics`: refused without a token holding `metrics:read` (admins only), and exposes
 * instances by state, restarts, job latency and outcomes, the queue, proxy requests and
 * latency, credits spent and the process's own metrics, after real traffic of each kind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createToken, login, ADMIN_PASSWORD, startTestServer, type TestServer } from '../helpers/server.js';
import { createInstance, waitFor, waitForState } from '../instances/helpers.js';
import { rawRequest } from '../proxy/fixtures.js';
import { sleep, userWithCredits } from './helpers.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ credits: { intervalSeconds: 0.5 } });
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

const scrape = (token?: string) =>
  fetch(`${server.url}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

/** The value of the first sample of `name` whose labels include every `labels` pair. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-z_:]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

describe('/metrics', () => {
  it('refuses requests without a token holding metrics:read', async () => {
    const anonymous = await scrape();
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as any).error.code).toBe('unauthenticated');
    const { token } = await userWithCredits(server, 'peek', 0);
    const user = await scrape(token);
    expect(user.status).toBe(403);
    expect(((await user.json()) as any).error.message).toContain('metrics:read');
    // A user cannot even mint a token with the scope.
    const mint = await api(server, token, 'POST', '/api/v1/tokens', { name: 'm', scopes: ['metrics:read'] });
    expect(mint.status).toBe(403);
  });

  it('exposes every series after traffic of each kind, to a token with only metrics:read', async () => {
    const { token } = await userWithCredits(server, 'mo', 100);
    const steady = await createInstance(server, token, { name: 'steady', command: ['sleep', '600'], metered: true });
    const crashy = await createInstance(server, token, { name: 'crashy', shell: 'exit 3' });
    await waitForState(server, token, steady.id, 'running');
    await waitFor(server, token, crashy.id, (i) => i.restartCount >= 1);
    expect((await api(server, token, 'POST', '/api/v1/jobs', { runtime: 'sh', entry: 'echo hi' })).status).toBe(200);
    // On the instance's own host, sent to 127.0.0.1 (no name is resolved).
    const proxied = await rawRequest(server.url, '/', {
      host: `nothing-here--mo.localhost:${new URL(server.url).port}`,
      authorization: `Bearer ${token}`,
    });
    expect(proxied.status).toBe(404);
    const metricsToken = await createToken(server.url, await login(server.url, 'admin', ADMIN_PASSWORD), 'prometheus', ['metrics:read']);
    // Scraped until the metering (every 0.5 s here) has debited the running instance once;
    // a busy machine may take several intervals.
    let text = '';
    for (const end = Date.now() + 20_000; Date.now() < end; await sleep(250)) {
      const res = await scrape(metricsToken);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      text = await res.text();
      if ((sample(text, 'corral_credits_spent_total', { kind: 'instance' }) ?? 0) >= 1) break;
    }

    expect(sample(text, 'corral_instances', { state: 'running' })).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'corral_instances', { state: 'failed' })).toBe(0);
    expect(sample(text, 'corral_instance_restarts_total')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'corral_jobs_total', { runtime: 'sh', status: 'ok' })).toBe(1);
    expect(sample(text, 'corral_job_duration_seconds_count', { runtime: 'sh' })).toBe(1);
    expect(sample(text, 'corral_job_duration_seconds_bucket', { runtime: 'sh', le: '+Inf' })).toBe(1);
    expect(sample(text, 'corral_job_queue_length')).toBe(0);
    expect(sample(text, 'corral_jobs_running')).toBe(0);
    expect(sample(text, 'corral_proxy_requests_total', { code: '404' })).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'corral_proxy_request_duration_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'corral_credits_spent_total', { kind: 'instance' })).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(sample(text, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    await api(server, token, 'DELETE', `/api/v1/instances/${crashy.id}`);
  }, 40_000);
});
