/**
 * WatchSlice: a snapshot (or the events retained after `after_sequence`),
 * then each event as it is published; the stream ends at a stable state, or
 * with `follow` once the slice is deleted or expired. A reader that falls
 * more than `limits.watch_queue_events` events behind is cut off
 * (RESOURCE_EXHAUSTED naming the cap; events.ts).
 */
import { InvalidArgumentError } from '../../core/errors.js';
import type { WatchSliceRequest, WatchSliceResponse } from '../../generated/fedlab/v1/slice_authority.js';
import type { Caller } from '../accounts.js';
import { STABLE, stateFromWire, type StateName } from '../records.js';
import type { SliceBookState } from './book-state.js';
import { ownedSlice } from './read.js';

/** The events of a slice for one watcher, until the slice is done or `signal` aborts. */
export async function* watchSlice(
  book: SliceBookState,
  caller: Caller,
  req: WatchSliceRequest,
  signal: AbortSignal,
): AsyncGenerator<WatchSliceResponse> {
  const rec = ownedSlice(book, caller, req.sliceUrn);
  if (!Number.isSafeInteger(req.afterSequence) || req.afterSequence < 0)
    throw new InvalidArgumentError('after_sequence must be 0 or more', { field: 'after_sequence' });
  // Subscribed before the snapshot, so nothing published meanwhile is missed; bounded (events.ts).
  const feed = book.deps.hub.feed(rec.urn, book.deps.limits.watch_queue_events);
  try {
    let last: number;
    let state = rec.state;
    if (req.afterSequence === 0) {
      yield book.event(rec, { message: 'snapshot', snapshot: true }, rec.seq);
      last = rec.seq;
    } else {
      last = req.afterSequence;
      for (const e of book.deps.hub.since(rec.urn, last)) {
        yield e;
        last = e.sequence;
        state = stateFromWire(e.state) ?? state;
      }
      state = book.slices.get(rec.urn)?.state ?? state;
    }
    const done = (s: StateName): boolean => (req.follow ? s === 'deleted' || s === 'expired' : STABLE.has(s));
    if (done(state)) return;
    for (;;) {
      const e = await feed.next(signal, last);
      if (!e) return;
      if (e.sequence <= last) continue;
      last = e.sequence;
      yield e;
      const s = stateFromWire(e.state);
      if (e.site === '' && e.slice && s && done(s)) return;
    }
  } finally {
    feed.close();
  }
}
