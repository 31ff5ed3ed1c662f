/**
 * The slice authority's periodic work: the expiry sweep, retries of deletes
 * a site did not confirm, pushes of the revocation list to sites that do not
 * have it everywhere yet, and — when given — the compaction of the revocation
 * list (entries of expired credentials leave) and the retention purges of
 * ended records (retention.ts).
 */
import type { Logger } from '../core/log.js';
import { Periodic } from '../core/periodic.js';
import type { SaSettings } from './config.js';
import type { SliceCredentials } from './credentials.js';
import { SaRetention } from './retention.js';
import type { RevocationPush } from './revocation-push.js';
import type { SliceBook } from './slices/slice-book.js';

/** What the compaction and retention tasks need. */
export interface UpkeepDeps {
  readonly credentials: SliceCredentials;
  readonly settings: Pick<SaSettings, 'retention'>;
  /** Milliseconds since the epoch. */
  readonly now: () => number;
}

/** The periodic tasks (not started). */
export function backgroundTasks(
  book: SliceBook,
  push: RevocationPush,
  intervals: SaSettings['intervals'],
  log: Logger,
  upkeep?: UpkeepDeps,
): Periodic[] {
  const tasks = [
    new Periodic({ name: 'expiry-sweeper', intervalMs: intervals.sweepMs, log }, async () => {
      await book.sweep();
    }),
    new Periodic({ name: 'intent-retry', intervalMs: intervals.intentRetryMs, log }, () => book.retryIntents()),
    new Periodic({ name: 'revocation-push', intervalMs: intervals.revocationPushMs, log }, async () => {
      await push.push();
    }),
  ];
  if (upkeep) {
    const { credentials, settings, now } = upkeep;
    const retention = new SaRetention({ book, credentials, settings: settings.retention, now, log });
    tasks.push(
      // Right away too: a list restored from an old store may hold many expired entries.
      new Periodic({ name: 'revocation-compaction', intervalMs: settings.retention.intervalMs, log, immediate: true }, async () => {
        await credentials.compact();
      }),
      new Periodic({ name: 'retention-purge', intervalMs: settings.retention.intervalMs, log }, async () => {
        await retention.purge();
      }),
    );
  }
  return tasks;
}
