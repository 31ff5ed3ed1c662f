/**
 * In-process serialisation. Admission (capacity checks plus the store write)
 * runs through one {@link Mutex} so concurrent creates can never both see the
 * same free capacity; operations on one sliver run through a {@link KeyedMutex}
 * so a delete never interleaves with a start of the same sliver.
 */

/** A FIFO async mutex. */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();

  /** Runs `fn` once every earlier caller has finished; errors propagate to the caller only. */
  run<T>(fn: () => Promise<T> | T): Promise<T> {
    const result = this.tail.then(fn);
    // The next caller waits for this one to settle, whatever its outcome.
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

/** One FIFO mutex per key; idle keys are forgotten. */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `fn` after every earlier caller with the same key has finished. */
  run<T>(key: string, fn: () => Promise<T> | T): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const result = prev.then(fn);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** Whether anyone holds or waits for `key`. */
  busy(key: string): boolean {
    return this.tails.has(key);
  }

  /** Number of keys with work queued or running (for tests and diagnostics). */
  get size(): number {
    return this.tails.size;
  }
}
