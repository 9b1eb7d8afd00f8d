/**
 * Runs async sections one at a time per key (a user id), in the order they were asked for;
 * sections for different keys run side by side. For a check followed by the write it
 * justifies (a quota, a balance): no other section for the same key runs in between. It is
 * per process: managers sharing one database each hold their own.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return next;
  }
}
