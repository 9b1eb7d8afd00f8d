/**
 * Source work in progress (downloads and unpacks), by key — an instance id — so that
 * deleting the instance or stopping the server ends it at once instead of waiting for it:
 *
 *     await inFlight.run(id, (signal) => prepareSource({ …, signal }));
 *     inFlight.cancel(id);   // on delete: that run rejects with source_cancelled
 *     inFlight.cancelAll();  // on stop: every run, and any started later, is cancelled
 */
import { errors, type CorralError } from '../errors.js';

export class InFlight {
  private readonly running = new Map<string, Set<AbortController>>();
  private closedBecause: CorralError | undefined;

  /** Runs `fn` with a signal that `cancel(key)` or `cancelAll()` aborts; then it rejects with the cancel reason. */
  async run<T>(key: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.closedBecause) throw this.closedBecause;
    const controller = new AbortController();
    let set = this.running.get(key);
    if (!set) this.running.set(key, (set = new Set()));
    set.add(controller);
    try {
      return await fn(controller.signal);
    } catch (e) {
      // Whatever the work threw on its way out (a closed stream, a cancelled download), say why it ended.
      throw controller.signal.aborted ? (controller.signal.reason as unknown) : e;
    } finally {
      set.delete(controller);
      if (!set.size && this.running.get(key) === set) this.running.delete(key);
    }
  }

  /** Cancels the runs under `key`; true if there were any. */
  cancel(key: string, reason = 'the instance is being deleted'): boolean {
    const set = this.running.get(key);
    for (const controller of set ?? []) controller.abort(errors.sourceCancelled(reason));
    return !!set?.size;
  }

  /** Cancels every run, and every later one as it starts. */
  cancelAll(reason = 'the server is stopping'): void {
    this.closedBecause ??= errors.sourceCancelled(reason);
    for (const set of this.running.values()) for (const controller of set) controller.abort(this.closedBecause);
  }
}
