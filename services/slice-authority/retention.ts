/**
 * The slice authority's retention purges: what has ended is dropped after a
 * configured time (`retention` in the config), so that its state stays bounded
 * under a quota however many slices come and go.
 *
 * - An ended slice (deleted, expired, failed) leaves `retention.ended_slice_s`
 *   after it ended (its last update), with no intent left on it. It is dropped
 *   under the admission lock, so a CreateSlice reusing the name never races it.
 * - A request id (CreateSlice, UpdateSliceUsers) stays as a small tombstone
 *   (slice URN, fingerprint, time) for `retention.request_id_s` after it was
 *   made — at least as long as the slice record — and then only once its slice
 *   record is gone. A retry of a request id whose slice was purged is refused
 *   FAILED_PRECONDITION (the slice it made is gone), never a second slice; past
 *   the tombstone's retention the id is free again.
 * - An issued-credential record leaves `retention.credential_s` after the
 *   credential expired.
 *
 * Every purge works in batches of at most `retention.batch` records, each one
 * atomic write, until nothing is due.
 */
import type { Logger } from '../core/log.js';
import type { SliceCredentials } from './credentials.js';
import type { RetentionSettings } from './config.js';
import { ENDED, type RequestRecord } from './records.js';
import type { SliceBook } from './slices/slice-book.js';

/** Options of {@link SaRetention}. */
export interface SaRetentionOptions {
  readonly book: SliceBook;
  readonly credentials: Pick<SliceCredentials, 'purgeIssued'>;
  readonly settings: RetentionSettings;
  /** Milliseconds since the epoch. */
  readonly now: () => number;
  readonly log: Logger;
}

/** What one purge dropped. */
export interface PurgeCounts {
  slices: number;
  requests: number;
  credentials: number;
}

/** The retention purges of one slice authority. */
export class SaRetention {
  constructor(private readonly o: SaRetentionOptions) {}

  /** Drops everything due now, batch by batch; returns the counts (never throws on an empty store). */
  async purge(): Promise<PurgeCounts> {
    const out: PurgeCounts = { slices: 0, requests: 0, credentials: 0 };
    const max = this.o.settings.batch;
    for (let n = max; n === max; out.slices += n) n = await this.purgeSlices(max);
    const cursor = { after: undefined as string | undefined };
    for (let more = true; more;) {
      const r = await this.purgeRequests(max, cursor);
      out.requests += r.dropped;
      more = r.more;
    }
    const cutoff = this.o.now() - this.o.settings.credentialMs;
    for (let n = max; n === max; out.credentials += n) n = await this.o.credentials.purgeIssued(cutoff, max);
    if (out.slices || out.requests || out.credentials) this.o.log.info(out, 'ended records purged after their retention');
    return out;
  }

  /** One batch of ended slices past their retention. */
  private purgeSlices(max: number): Promise<number> {
    const book = this.o.book.state;
    return book.admission.run(async () => {
      const cutoff = this.o.now() - this.o.settings.endedSliceMs;
      const busy = new Set([...book.intents.values()].map((i) => i.sliceUrn));
      // A slice whose lock is held is being changed (an expiry sweep, a DeleteSlice of a failed one): not now.
      const due = [...book.slices.values()]
        .filter((s) => ENDED.has(s.state) && s.updatedAt < cutoff && !busy.has(s.urn) && !book.locks.busy(s.urn))
        .slice(0, max);
      if (!due.length) return 0;
      const batch = book.deps.store.batch();
      for (const s of due) batch.del(book.sliceTable, s.urn);
      await batch.write({ sync: true });
      for (const s of due) {
        // Only the record just dropped: a new slice of the name cannot have come (admission is held).
        if (book.slices.get(s.urn) === s) book.slices.delete(s.urn);
        book.refreshedAt.delete(s.urn);
        book.deps.hub.forget(s.urn);
      }
      return due.length;
    });
  }

  /**
   * One batch of request ids past their retention whose slice record is gone. The scan goes on from where
   * the previous batch of this purge stopped (`cursor`), so records that are not due (a live slice's) are
   * read once per purge, not once per batch, while the admission lock is held.
   */
  private purgeRequests(max: number, cursor: { after: string | undefined }): Promise<{ dropped: number; more: boolean }> {
    const book = this.o.book.state;
    return book.admission.run(async () => {
      const cutoff = this.o.now() - this.o.settings.requestIdMs;
      const due: string[] = [];
      let scanned = 0;
      let last: string | undefined;
      for await (const [k, v] of book.requestTable.entries(cursor.after !== undefined ? { gt: cursor.after } : {})) {
        last = k;
        if (isDue(v, cutoff) && !book.slices.has(v.sliceUrn)) due.push(k);
        // One batch reads at most a bounded number of records, so the lock is let go between them.
        scanned++;
        if (due.length >= max || scanned >= SCAN_PER_BATCH) break;
      }
      cursor.after = last;
      // The scan stopped early (a full batch, or the read bound): there may be more after the cursor.
      const more = due.length >= max || scanned >= SCAN_PER_BATCH;
      if (!due.length) return { dropped: 0, more };
      const batch = book.deps.store.batch();
      for (const k of due) batch.del(book.requestTable, k);
      await batch.write({ sync: true });
      return { dropped: due.length, more };
    });
  }
}

/** Request records one batch reads at most (under the admission lock). */
const SCAN_PER_BATCH = 5000;

function isDue(r: RequestRecord, cutoff: number): boolean {
  return r.createdAt < cutoff;
}
