/**
 * Reading slices: which slice a caller may see (its own, or any for an
 * administrator), GetSlice as recorded or as the sites report it now, and
 * ListSlices.
 */
import { status as Status } from '@grpc/grpc-js';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../../core/errors.js';
import { pageSize, urnField } from '../../core/validate.js';
import { AllocationState, OperationalState, type Sliver } from '../../generated/fedlab/v1/common.js';
import type { ListSlicesRequest, ListSlicesResponse, Slice } from '../../generated/fedlab/v1/slice_authority.js';
import type { Caller } from '../accounts.js';
import { sliversOf, stateFromWire, storeSlivers, type SliceRecord } from '../records.js';
import { OK } from '../../core/rpc/outcome.js';
import { decodePageToken, encodePageToken } from '../../core/paging.js';
import type { SliceBookState } from './book-state.js';
import { statusAt } from './site-calls.js';
import { released, sliverChanged } from './sliver-status.js';

/** How long a GetSlice answer from the sites stays fresh enough to be given again without asking them. */
export const STATUS_FRESH_MS = 2_000;

/** Reads kept in the freshness map before old ones are dropped. */
const MAX_FRESH_READS = 4096;

/**
 * How close to its expiry a slice is answered from the record. From its expiry on, the sites let its
 * slivers go on their own (their sweepers, the node managers' reapers); asked then, a site says it no
 * longer has them, and recording that as a failure would take the sites out of the expiry's delete, so
 * no node would be reported deleted. The margin covers clocks of sites that run a little ahead.
 */
export const EXPIRY_MARGIN_MS = 1_000;

/** A slice the caller may see: its provider's, or any for an administrator. NOT_FOUND otherwise (others' slices are not disclosed). */
export function ownedSlice(book: SliceBookState, caller: Caller, urn: string, field = 'slice_urn'): SliceRecord {
  urnField(field, urn, 'slice');
  const rec = book.slices.get(urn);
  if (!rec || (!caller.admin && rec.providerUrn !== caller.urn)) {
    throw new NotFoundError(`no slice ${urn} of ${caller.urn} at this slice authority; list your slices with ListSlices`);
  }
  return rec;
}

/** Throws FAILED_PRECONDITION unless the slice is live (for credentials). */
export function requireLive(rec: SliceRecord): void {
  if (rec.state !== 'ready' && rec.state !== 'partial' && rec.state !== 'pending') {
    throw new FailedPreconditionError(`slice ${rec.urn} is ${rec.state}; credentials are issued only for live slices (create it again)`, {
      rule: 'state',
    });
  }
}

/** Whether GetSlice asks the sites about a slice now, rather than answering from the record. */
function worthAsking(book: SliceBookState, rec: SliceRecord): boolean {
  return (rec.state === 'ready' || rec.state === 'partial') && rec.expiresAt - EXPIRY_MARGIN_MS > book.now;
}

/**
 * How long before its answer goes stale a slice that is being read is asked of its sites again, in
 * the background: readers keep getting the record (still within {@link STATUS_FRESH_MS}) while the
 * new answer comes, instead of waiting for the sites' round trip at every expiry of the old one.
 */
export const REFRESH_AHEAD_MS = 500;

/**
 * GetSlice with every sliver as its site reports it now: for a READY or PARTIAL slice each site
 * holding slivers is asked for its Status (in parallel, within `limits.status_deadline_ms`), and
 * what changed is recorded and published to watchers. A site that does not answer keeps its last
 * known slivers. A slice that is being created or deleted is answered from the record (the SA is
 * talking to its sites anyway), and so is one at its expiry (the expiry sweep deletes it at every
 * site: see {@link EXPIRY_MARGIN_MS}). Asked again within {@link STATUS_FRESH_MS}, the record is fresh
 * enough, and is answered without the slice's lock; in the last {@link REFRESH_AHEAD_MS} of that, the
 * read also starts the next refresh, in the background. A reader that finds the record stale shares
 * the refresh in flight, if any (its answer arrives after the reader did, so it is fresher than a
 * record the reader would accept), instead of queueing behind it to ask the sites again.
 */
export async function getLiveSlice(book: SliceBookState, caller: Caller, urn: string): Promise<Slice> {
  const rec0 = ownedSlice(book, caller, urn);
  if (!worthAsking(book, rec0) || book.stopping) return book.slices.wire(rec0);
  const age = book.now - (book.refreshedAt.get(urn) ?? -Infinity);
  if (age < STATUS_FRESH_MS) {
    if (age >= STATUS_FRESH_MS - REFRESH_AHEAD_MS && !book.refreshing.has(urn))
      refresh(book, urn).catch((err: unknown) =>
        book.deps.log.warn({ slice: urn, err: (err as Error).message }, 'the slice could not be refreshed from its sites'),
      );
    return book.slices.wire(rec0);
  }
  return book.refreshing.get(urn) ?? refresh(book, urn);
}

/** Starts a refresh of the slice from its sites (one at a time per slice; tracked, so a stop waits for it). */
function refresh(book: SliceBookState, urn: string): Promise<Slice> {
  const seen = book.refreshedAt.get(urn);
  const pending = book.track(book.locks.run(urn, () => refreshLocked(book, urn, seen))).finally(() => book.refreshing.delete(urn));
  book.refreshing.set(urn, pending);
  return pending;
}

/**
 * Asks the slice's sites for their slivers and records what changed; call holding the slice's lock.
 * `seen`: when the slice was last refreshed as the caller saw it.
 */
async function refreshLocked(book: SliceBookState, urn: string, seen: number | undefined): Promise<Slice> {
  const rec = book.slices.get(urn) as SliceRecord;
  // Other work on the slice may have held the lock meanwhile: what it left may need no asking.
  const again = book.refreshedAt.get(urn);
  if (!worthAsking(book, rec) || (again !== seen && again !== undefined && book.now - again < STATUS_FRESH_MS))
    return book.slices.wire(rec);
  const answers = await Promise.all(rec.sites.map((s) => statusAt(book, rec.urn, s)));
  // Only recent reads matter: old ones are dropped before the map grows large.
  if (book.refreshedAt.size >= MAX_FRESH_READS)
    for (const [k, at] of book.refreshedAt) if (book.now - at >= STATUS_FRESH_MS) book.refreshedAt.delete(k);
  book.refreshedAt.set(urn, book.now);
  const changed: { site: string; sliver: Sliver }[] = [];
  const sites = rec.sites.map((s, i) => {
    const answer = answers[i];
    if (answer === undefined) return s;
    const slivers = sliversOf(s).map((x) => {
      if (x.allocationState === AllocationState.ALLOCATION_STATE_UNALLOCATED) return x;
      const now = answer === 'gone' ? undefined : answer.get(x.urn);
      const next = now
        ? {
            ...x,
            allocationState: now.allocationState,
            operationalState: now.operationalState,
            ...(now.expiresAt ? { expiresAt: now.expiresAt } : {}),
            // A transient note (a node the site could not reach) is not a failure of the sliver.
            error: now.operationalState === OperationalState.OPERATIONAL_STATE_FAILED ? now.error : '',
          }
        : (released([x], `site ${s.site} no longer has this sliver (it expired or was deleted there)`)[0] as Sliver);
      if (sliverChanged(x, next)) changed.push({ site: s.site, sliver: next });
      return next;
    });
    return { ...s, slivers: storeSlivers(slivers) };
  });
  if (changed.length === 0) return book.slices.wire(rec);
  const next: SliceRecord = { ...rec, sites, updatedAt: book.now };
  // What the sites report can be asked again at any time: no need to wait for the disk; and a store
  // that refuses writes does not stop the answer (a read), it only keeps the record as it was.
  try {
    await book.sliceTable.put(urn, next);
  } catch (err) {
    book.deps.log.warn({ slice: urn, err: (err as Error).message }, "the sites' report of the slice was not recorded");
    return book.slices.wire(next);
  }
  book.slices.set(urn, { ...next, seq: (book.slices.get(urn) as SliceRecord).seq });
  for (const c of changed) {
    const state = c.sliver.operationalState;
    book.publish(next, {
      site: c.site,
      nodeUrn: c.sliver.nodeUrn,
      sliverUrn: c.sliver.urn,
      status:
        state === OperationalState.OPERATIONAL_STATE_FAILED || c.sliver.allocationState === AllocationState.ALLOCATION_STATE_UNALLOCATED
          ? { code: Status.UNAVAILABLE, reason: c.sliver.error }
          : OK,
      message: `now ${OperationalState[state].replace('OPERATIONAL_STATE_', '').toLowerCase()}${c.sliver.error ? `: ${c.sliver.error}` : ''}`,
    });
  }
  return book.slices.wire(book.slices.get(urn) as SliceRecord);
}

/**
 * ListSlices: the caller's slices (every slice for administrators), by URN, paged. Read from the
 * caller's own index from the page token on (slice-index.ts), one record past the page to know
 * whether another page follows; each slice's wire form is made once per change.
 */
export function listSlices(book: SliceBookState, caller: Caller, req: ListSlicesRequest): ListSlicesResponse {
  const size = pageSize(req.pageSize);
  const after = decodePageToken('slices', req.pageToken);
  const want = req.state ? stateFromWire(req.state) : undefined;
  if (req.state && !want) throw new InvalidArgumentError('state is not a slice state', { field: 'state' });
  const keep = want ? (s: SliceRecord) => s.state === want : (s: SliceRecord) => s.state !== 'deleted' && s.state !== 'expired';
  const found = book.slices.after(caller.admin ? undefined : caller.urn, after, size + 1, keep);
  const page = found.slice(0, size);
  const last = page[page.length - 1];
  return {
    slices: page.map((s) => book.slices.wire(s)),
    nextPageToken: found.length > size && last ? encodePageToken('slices', last.urn) : '',
  };
}
