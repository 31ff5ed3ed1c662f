/**
 * WatchSlice: a snapshot (or the events retained after `after_sequence`),
 * then each event as it is published; the stream ends at a stable state, or
 * with `follow` once the slice is deleted or expired.
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
  const queue: WatchSliceResponse[] = [];
  let wake: (() => void) | undefined;
  const unsubscribe = book.deps.hub.subscribe(rec.urn, (e) => {
    queue.push(e);
    wake?.();
  });
  const onAbort = (): void => wake?.();
  signal.addEventListener('abort', onAbort);
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
    while (!signal.aborted) {
      const e = queue.shift();
      if (!e) {
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
        continue;
      }
      if (e.sequence <= last) continue;
      last = e.sequence;
      yield e;
      const s = stateFromWire(e.state);
      if (e.site === '' && e.slice && s && done(s)) return;
    }
  } finally {
    unsubscribe();
    signal.removeEventListener('abort', onAbort);
  }
}
