/**
 * Retries of a site's passing answers within the site's budget. A site that
 * answers UNAVAILABLE itself, with a retry hint (trailer
 * `fedlab-retry-after-ms`: an MA that has just restarted and waits for its
 * nodes' first heartbeats), is asked again after the hint — as long as the
 * answer can still come within the site's deadline. A transport failure (the
 * site unreachable) is not retried: it costs the caller the deadline at most
 * once, and the answer names the site.
 */
import { status as Status } from '@grpc/grpc-js';
import { DeadlineExceededError } from '../../core/errors.js';
import { isServiceError } from '../../core/rpc/client.js';
import { isUnreachable } from '../../core/rpc/outcome.js';
import { sleep } from '../../core/timing.js';

/** The trailer with which a server says when to try again (ms). */
export const RETRY_AFTER_TRAILER = 'fedlab-retry-after-ms';

/** Time the answer of a retried call needs at least, beyond the wait (ms). */
const ANSWER_MS = 250;

/** How long the site asks to wait before a retry, when its answer is a retryable UNAVAILABLE; undefined otherwise. */
export function retryAfterMs(err: unknown): number | undefined {
  if (!isServiceError(err, Status.UNAVAILABLE) || isUnreachable(err)) return undefined;
  const hint = Number(err.metadata?.get(RETRY_AFTER_TRAILER)[0]);
  return Number.isFinite(hint) && hint >= 0 ? hint : undefined;
}

/** The site's budget as a clock: the time left for a step, and whether a wait still leaves room for an answer. */
export interface Budget {
  /** Milliseconds left (0 or less once spent). */
  remaining(): number;
  /** Milliseconds left for `step`; throws DEADLINE_EXCEEDED naming the step when none are. */
  left(step: string): number;
}

/** A budget ending at `end` (ms since the epoch, on `now`'s clock); `deadlineMs` is what messages name. */
export function budget(end: number, now: () => number, deadlineMs: number): Budget {
  return {
    remaining: () => end - now(),
    left(step) {
      const ms = end - now();
      if (ms <= 0) throw new DeadlineExceededError(`${step} not done within the site's deadline of ${deadlineMs} ms`);
      return ms;
    },
  };
}

/**
 * Runs `call` (given the deadline it has: what is left of the budget) and runs it again after the
 * site's retry hint for as long as the site answers a retryable UNAVAILABLE and the budget leaves
 * room for the wait and an answer. The site's last answer is thrown otherwise.
 */
export async function withRetries<T>(step: string, within: Budget, call: (deadlineMs: number) => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await call(within.left(step));
    } catch (err) {
      const wait = retryAfterMs(err);
      if (wait === undefined || wait + ANSWER_MS >= within.remaining()) throw err;
      await sleep(wait);
    }
  }
}
