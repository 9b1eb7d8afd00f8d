/**
 * Prometheus metrics (prom-client), one registry per server: instances by state, restarts,
 * job latency and outcomes, the job queue, proxy requests and latency, credits spent, and
 * the process's own metrics. Core and the proxy report through the methods below; gauges
 * that describe the present (instances by state, queue length) are read when scraped.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { RequestTally } from './metrics-batch.js';
import { systemUser } from './accounts/system-user.js';
import type { User } from './accounts/types.js';
import type { InstanceEvent } from './instances/events.js';
import { STATES, type InstanceState } from './instances/spec.js';

export interface MetricSources {
  /** How many instances are in each observed state now. */
  instanceStates(): Promise<Partial<Record<InstanceState, number>>>;
  /** Jobs waiting and running now. */
  jobQueue(): { queued: number; running: number };
}

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const JOB_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60];

export class Metrics {
  readonly registry = new Registry();
  private readonly restarts: Counter;
  private readonly jobs: Counter<'runtime' | 'status'>;
  private readonly jobLatency: Histogram<'runtime'>;
  private readonly proxy: RequestTally;
  private readonly spent: Counter<'kind'>;
  private sources: MetricSources | undefined;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    const sources = () => this.sources;
    new Gauge({
      name: 'corral_instances',
      help: 'Instances by observed state',
      labelNames: ['state'],
      registers,
      async collect() {
        const counts = (await sources()?.instanceStates()) ?? {};
        for (const state of STATES) this.set({ state }, counts[state] ?? 0);
      },
    });
    new Gauge({
      name: 'corral_job_queue_length',
      help: 'Jobs waiting for a free slot',
      registers,
      collect() {
        this.set(sources()?.jobQueue().queued ?? 0);
      },
    });
    new Gauge({
      name: 'corral_jobs_running',
      help: 'Jobs running now',
      registers,
      collect() {
        this.set(sources()?.jobQueue().running ?? 0);
      },
    });
    this.restarts = new Counter({ name: 'corral_instance_restarts_total', help: 'Restarts of instances after an exit (backoff)', registers });
    this.jobs = new Counter({ name: 'corral_jobs_total', help: 'Finished jobs by outcome', labelNames: ['runtime', 'status'], registers });
    this.jobLatency = new Histogram({
      name: 'corral_job_duration_seconds',
      help: 'Time from a job’s admission to its result (queue wait plus run)',
      labelNames: ['runtime'],
      buckets: JOB_BUCKETS,
      registers,
    });
    // Proxied requests reach prom-client in batches; a scrape takes what is pending first.
    const flushProxy = () => this.proxy.flush();
    this.proxy = new RequestTally(
      new Counter({
        name: 'corral_proxy_requests_total',
        help: 'HTTP requests through the proxy by status code',
        labelNames: ['code'],
        registers,
        collect: flushProxy,
      }),
      new Histogram({
        name: 'corral_proxy_request_duration_seconds',
        help: 'Time from a proxied request to the end of its response',
        buckets: LATENCY_BUCKETS,
        registers,
        collect: flushProxy,
      }),
    );
    this.spent = new Counter({ name: 'corral_credits_spent_total', help: 'Credits debited, by what used them', labelNames: ['kind'], registers });
  }

  /** Where the scrape-time gauges read from (set once core is open). */
  watch(sources: MetricSources): void {
    this.sources = sources;
  }

  instanceRestarted(): void {
    this.restarts.inc();
  }

  jobFinished(runtime: string, status: string, latencySeconds: number): void {
    this.jobs.inc({ runtime, status });
    this.jobLatency.observe({ runtime }, latencySeconds);
  }

  proxyRequest(statusCode: number, seconds: number): void {
    this.proxy.record(statusCode, seconds);
  }

  creditsSpent(kind: string, credits: number): void {
    if (credits > 0) this.spent.inc({ kind }, credits);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}

/** Points the scrape-time gauges at core and counts restarts from instance events. */
export function watchCore(
  metrics: Metrics,
  core: {
    store: { instances: { list(): Promise<{ state: InstanceState }[]> } };
    jobs: { stats: { queued: number; running: number } };
    instances: { service: { subscribe(user: User, fn: (e: InstanceEvent) => void): () => void } };
  },
): () => void {
  metrics.watch({
    instanceStates: async () => {
      const counts: Partial<Record<InstanceState, number>> = {};
      for (const r of await core.store.instances.list()) counts[r.state] = (counts[r.state] ?? 0) + 1;
      return counts;
    },
    jobQueue: () => core.jobs.stats,
  });
  return core.instances.service.subscribe(systemUser('metrics'), (e) => {
    if (e.type === 'state' && e.state === 'backoff') metrics.instanceRestarted();
  });
}
