/**
 * Proxied requests reach prom-client in batches: a scrape sees every request recorded so
 * far, whether or not a batch filled, and nothing is counted twice.
 */
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../src/core/metrics.js';

const value = async (m: Metrics, name: string, labels = '') => {
  const line = (await m.text()).split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
};

describe('proxy request metrics', () => {
  it('shows requests recorded since the last batch at the next scrape', async () => {
    const m = new Metrics();
    m.proxyRequest(200, 0.002);
    m.proxyRequest(404, 0.02);
    expect(await value(m, 'corral_proxy_requests_total', '{code="200"}')).toBe(1);
    expect(await value(m, 'corral_proxy_requests_total', '{code="404"}')).toBe(1);
    expect(await value(m, 'corral_proxy_request_duration_seconds_bucket', '{le="0.005"}')).toBe(1);
    expect(await value(m, 'corral_proxy_request_duration_seconds_count')).toBe(2);
  });

  it('counts every request exactly once across full batches and scrapes', async () => {
    const m = new Metrics();
    for (let i = 0; i < 2500; i++) m.proxyRequest(i % 5 === 0 ? 502 : 200, 0.001);
    expect(await value(m, 'corral_proxy_requests_total', '{code="200"}')).toBe(2000);
    expect(await value(m, 'corral_proxy_requests_total', '{code="502"}')).toBe(500);
    for (let i = 0; i < 10; i++) m.proxyRequest(200, 3);
    expect(await value(m, 'corral_proxy_requests_total', '{code="200"}')).toBe(2010);
    expect(await value(m, 'corral_proxy_request_duration_seconds_count')).toBe(2510);
    expect(await value(m, 'corral_proxy_request_duration_seconds_sum')).toBeCloseTo(2.5 + 30, 6);
  });
});
