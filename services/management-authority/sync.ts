/**
 * In-process serialisation. Admission (capacity checks plus the store write
 * that records a hold) runs through one {@link Mutex}, so two Allocates can
 * never both see the same free capacity; work on one slice runs through a
 * {@link KeyedMutex}, so a Delete never interleaves with a Provision of the
 * same slice.
 */

/** A FIFO lock. */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();

  /** Runs `fn` when every earlier holder is done; returns its result. */
  run<T>(fn: () => Promise<T> | T): Promise<T> {
    const result = this.tail.then(fn);
    // The next holder waits for this one whether it succeeds or fails.
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

/** One FIFO lock per key; idle keys are forgotten. */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `fn` holding the lock of `key`. */
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
}
