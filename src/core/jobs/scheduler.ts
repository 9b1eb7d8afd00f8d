/**
 * Capacity: a bounded pool of jobs running at once, a bounded FIFO queue for the rest, and a
 * per-user cap on running jobs (a user at the cap waits in the queue while others pass).
 * A full queue refuses at once with 429 and a Retry-After estimate — never a job stuck.
 */
import { errors } from '../errors.js';

export interface Schedulable {
  userId: string;
  /** Called when the job may start; must call `release` once it ends. */
  start(): void;
}

export class Scheduler<T extends Schedulable> {
  private readonly queue: T[] = [];
  private readonly runningByUser = new Map<string, number>();
  private running = 0;
  /** Moving average of job durations, for Retry-After. */
  private avgMs = 1000;

  constructor(
    private readonly poolSize: number,
    private readonly queueLength: number,
    private readonly perUser: number,
  ) {}

  get stats() {
    return { running: this.running, queued: this.queue.length, poolSize: this.poolSize, queueLength: this.queueLength };
  }

  /** Starts `job` now or queues it; throws busy (429) when the queue is full. */
  submit(job: T): void {
    if (this.queue.length === 0 && this.canStart(job)) return this.launch(job);
    if (this.queue.length >= this.queueLength) {
      const retryAfter = Math.max(1, Math.ceil(((this.queue.length + 1) * this.avgMs) / this.poolSize / 1000));
      throw errors.busy(retryAfter, `the job queue is full (${this.queueLength} waiting); retry in ${retryAfter} s`);
    }
    this.queue.push(job);
    this.pump();
  }

  /** Takes a job out of the queue before it starts; false when it is not queued. */
  cancel(job: T): boolean {
    const i = this.queue.indexOf(job);
    if (i < 0) return false;
    this.queue.splice(i, 1);
    return true;
  }

  /** Marks a started job as ended and starts what can start now. */
  release(job: T, durationMs: number): void {
    this.running--;
    const n = (this.runningByUser.get(job.userId) ?? 1) - 1;
    if (n > 0) this.runningByUser.set(job.userId, n);
    else this.runningByUser.delete(job.userId);
    this.avgMs = this.avgMs * 0.9 + durationMs * 0.1;
    this.pump();
  }

  /** Empties the queue, returning what was waiting. */
  drain(): T[] {
    return this.queue.splice(0);
  }

  private canStart(job: T): boolean {
    return this.running < this.poolSize && (this.runningByUser.get(job.userId) ?? 0) < this.perUser;
  }

  private pump(): void {
    for (let i = 0; i < this.queue.length && this.running < this.poolSize; ) {
      const job = this.queue[i]!;
      if (this.canStart(job)) {
        this.queue.splice(i, 1);
        this.launch(job);
      } else i++;
    }
  }

  private launch(job: T): void {
    this.running++;
    this.runningByUser.set(job.userId, (this.runningByUser.get(job.userId) ?? 0) + 1);
    job.start();
  }
}
