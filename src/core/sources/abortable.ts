/**
 * Reads an async iterable until a signal aborts, then throws the signal's reason at once —
 * also while waiting for the next chunk, which a check between chunks would not: a tar
 * entry whose data stops coming (its parser was stopped), or an upload that stalls, would
 * otherwise hold the caller forever.
 */
export async function* abortable<T>(source: AsyncIterable<T>, signal: AbortSignal | undefined): AsyncGenerator<T, void, undefined> {
  if (!signal) {
    yield* source;
    return;
  }
  signal.throwIfAborted();
  const iterator = source[Symbol.asyncIterator]();
  let onAbort = () => {};
  const aborted = new Promise<never>((_, reject) => (onAbort = () => reject(signal.reason)));
  aborted.catch(() => {}); // observed through the race below
  signal.addEventListener('abort', onAbort, { once: true });
  let finished = false;
  try {
    for (;;) {
      const next = await Promise.race([iterator.next(), aborted]);
      if (next.done) {
        finished = true;
        return;
      }
      yield next.value;
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    // Closes the source (a stream is destroyed); not awaited, as a stalled one may never answer.
    if (!finished) void iterator.return?.()?.catch(() => {});
  }
}
