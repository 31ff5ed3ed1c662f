/**
 * Waiting and bounded concurrency, shared by every role, the CLI, the tests
 * and the benchmarks (there were five copies of `sleep` alone).
 */

/**
 * Resolves after `ms`, or at once when `signal` aborts (resolving, not
 * rejecting: callers check `signal.aborted` themselves, as loops do).
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Polls `predicate` every `intervalMs` until it holds; rejects naming `what`
 * after `timeoutMs`. For waiting on another process or a kernel object that
 * cannot notify us.
 */
export async function until(predicate: () => boolean | Promise<boolean>, timeoutMs: number, what: string, intervalMs = 50): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() >= end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/**
 * Runs `fn` over `items` with at most `limit` calls in flight, in order of
 * start; the first rejection is rethrown once every started call has settled.
 */
export async function pool<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (next < items.length && !failure) {
      const i = next++;
      try {
        await fn(items[i] as T, i);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failure) throw failure.err;
}
