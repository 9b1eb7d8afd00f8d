/**
 * Proxied requests, counted on the hot path in plain typed arrays and handed to prom-client
 * in batches: when scraped (the metrics' collect hooks) or every BATCH requests. Calling
 * prom-client once per request cost ~8 µs of a ~160 µs proxied request in a CPU profile
 * (label hashing and bucket search, cache-cold between requests); the same calls in a
 * tight loop over a batch cost a few percent of that.
 */
import type { Counter, Histogram } from 'prom-client';

const BATCH = 1024;

export class RequestTally {
  private readonly seconds = new Float64Array(BATCH);
  private readonly codes = new Uint16Array(BATCH);
  private n = 0;

  constructor(
    private readonly requests: Counter<'code'>,
    private readonly latency: Histogram,
  ) {}

  record(statusCode: number, seconds: number): void {
    this.codes[this.n] = statusCode;
    this.seconds[this.n] = seconds;
    if (++this.n === BATCH) this.flush();
  }

  /** Moves what was recorded into the prom-client metrics. */
  flush(): void {
    const byCode = new Map<number, number>();
    for (let i = 0; i < this.n; i++) {
      const code = this.codes[i]!;
      byCode.set(code, (byCode.get(code) ?? 0) + 1);
      this.latency.observe(this.seconds[i]!);
    }
    this.n = 0;
    for (const [code, count] of byCode) this.requests.inc({ code: String(code) }, count);
  }
}
