/**
 * RenewSlice: each site with live slivers is asked for the requested expiry,
 * capped by this authority's maximum, the site's maximum and its chain's
 * expiry and ttl. The slice's sites show the expiry each actually granted;
 * the slice expires with the earliest of them.
 */
import { FailedPreconditionError, InvalidArgumentError } from '../../core/errors.js';
import type { Sliver } from '../../generated/fedlab/v1/common.js';
import type { RenewSliceRequest } from '../../generated/fedlab/v1/slice_authority.js';
import type { Caller } from '../accounts.js';
import { sliceToWire, sliversOf, storeSlivers, type SliceRecord } from '../records.js';
import type { SliceBookState } from './book-state.js';
import { ownedSlice } from './read.js';
import { renewAt, siteResult, type SliceWithResults } from './site-calls.js';
import { liveSlivers } from './sliver-status.js';

/** Only a READY or PARTIAL slice can be renewed. */
function requireRenewable(rec: SliceRecord): void {
  if (rec.state !== 'ready' && rec.state !== 'partial') {
    throw new FailedPreconditionError(`slice ${rec.urn} is ${rec.state}; only a READY or PARTIAL slice can be renewed`, { rule: 'state' });
  }
}

/** RenewSlice: asks every site, records what each granted, and publishes the new expiry. */
export async function renewSlice(
  book: SliceBookState,
  caller: Caller,
  req: RenewSliceRequest,
  signal?: AbortSignal,
): Promise<SliceWithResults> {
  const rec0 = ownedSlice(book, caller, req.sliceUrn);
  const at = req.expiresAt?.getTime();
  if (at === undefined || !Number.isFinite(at)) throw new InvalidArgumentError('expires_at is required', { field: 'expires_at' });
  if (at <= book.now) throw new InvalidArgumentError('expires_at must be in the future', { field: 'expires_at' });
  requireRenewable(rec0);
  return book.track(
    book.locks.run(rec0.urn, async () => {
      const rec = book.slices.get(rec0.urn) as SliceRecord;
      requireRenewable(rec);
      const bestEffort = req.bestEffort || rec.mode === 'best_effort';
      const maxAt = book.now + book.deps.limits.max_slice_lifetime_s * 1000;
      const calls = await Promise.all(rec.sites.map((s) => renewAt(book, rec, s, at, maxAt, bestEffort)));
      const sites = rec.sites.map((s, i) => {
        const c = calls[i];
        if (c?.granted === undefined) return s;
        const renewed = new Map(c.results.filter((r) => !r.status?.code && r.sliver).map((r) => [r.sliverUrn, r.sliver as Sliver]));
        const slivers = sliversOf(s).map((x) => renewed.get(x.urn) ?? x);
        const expiries = slivers.filter((x) => renewed.has(x.urn) && x.expiresAt).map((x) => (x.expiresAt as Date).getTime());
        return { ...s, slivers: storeSlivers(slivers), expiresAt: expiries.length ? Math.min(...expiries) : c.granted };
      });
      const expiries = sites.filter((s) => liveSlivers(s).length > 0 && s.expiresAt !== undefined).map((s) => s.expiresAt as number);
      const next: SliceRecord = { ...rec, sites, expiresAt: expiries.length ? Math.min(...expiries) : rec.expiresAt, updatedAt: book.now };
      // Not recorded once the call has ended: the sites' longer expiries then end with the slice's.
      await book.sliceTable.put(rec.urn, next, { sync: true, ...(signal ? { signal } : {}) });
      book.slices.set(rec.urn, next);
      const failed = calls.filter((c) => c.outcome.code !== 0).map((c) => c.site);
      book.publish(next, {
        message: `renewed until ${new Date(next.expiresAt).toISOString()}${failed.length ? `; not at ${failed.join(', ')}` : ''}`,
        snapshot: true,
      });
      return { slice: sliceToWire(next), results: calls.map((c) => siteResult(book, c)) };
    }),
  );
}
