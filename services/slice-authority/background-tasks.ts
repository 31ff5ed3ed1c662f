/**
 * The slice authority's periodic work: the expiry sweep, retries of deletes
 * a site did not confirm, and pushes of the revocation list to sites that do
 * not have it everywhere yet.
 */
import type { Logger } from '../core/log.js';
import { Periodic } from '../core/periodic.js';
import type { SaSettings } from './config.js';
import type { RevocationPush } from './revocation-push.js';
import type { SliceBook } from './slices/slice-book.js';

/** The periodic tasks (not started). */
export function backgroundTasks(book: SliceBook, push: RevocationPush, intervals: SaSettings['intervals'], log: Logger): Periodic[] {
  return [
    new Periodic({ name: 'expiry-sweeper', intervalMs: intervals.sweepMs, log }, async () => {
      await book.sweep();
    }),
    new Periodic({ name: 'intent-retry', intervalMs: intervals.intentRetryMs, log }, () => book.retryIntents()),
    new Periodic({ name: 'revocation-push', intervalMs: intervals.revocationPushMs, log }, async () => {
      await push.push();
    }),
  ];
}
