/**
 * The slice authority's books and the work that spans sites: the facade the
 * handlers and the role call, over the operations of this folder.
 *
 * CreateSlice records the slice (PENDING), its request id and a `create`
 * intent in one batch, then asks every site in parallel — Allocate, Provision,
 * start — each site within its deadline, showing that site's `MA → SA` chain
 * (create.ts, site-calls.ts). All or nothing: a failure anywhere deletes the
 * slice at every site that may hold something; best effort keeps what worked.
 * The outcome and the removal of the intent are one batch. DeleteSlice (and
 * expiry) writes a `delete` intent first and removes each site from it as
 * that site confirms; a site that is down stays in the intent and is retried
 * (delete.ts). UpdateSliceUsers records the new list with a `users` intent
 * and hands it to every site, a site that did not take it retried (users.ts).
 * A restart rolls back every `create` intent and finishes every `delete` and
 * `users` intent (recovery.ts).
 */
import type {
  CreateSliceRequest,
  ListSlicesRequest,
  ListSlicesResponse,
  RenewSliceRequest,
  Slice,
  UpdateSliceUsersRequest,
  WatchSliceRequest,
  WatchSliceResponse,
} from '../../generated/fedlab/v1/slice_authority.js';
import type { Caller } from '../accounts.js';
import type { SliceRecord } from '../records.js';
import { SliceBookState, type SliceBookOptions } from './book-state.js';
import { createSlice } from './create.js';
import { deleteSlice } from './delete.js';
import { getLiveSlice, listSlices, ownedSlice, requireLive } from './read.js';
import { recoverIntents, retryIntents, sweepExpired } from './recovery.js';
import { renewSlice } from './renew.js';
import type { SliceWithResults } from './site-calls.js';
import { updateSliceUsers } from './users.js';
import { watchSlice } from './watch.js';

export type { SliceBookOptions } from './book-state.js';
export { STATUS_FRESH_MS } from './read.js';
export type { SliceWithResults } from './site-calls.js';

/** The slice authority's slices and their work across sites. */
export class SliceBook {
  private readonly book: SliceBookState;

  constructor(deps: SliceBookOptions) {
    this.book = new SliceBookState(deps);
  }

  /** Loads the books from the store. */
  load(): Promise<void> {
    return this.book.load();
  }

  /** The shared state, for the retention purges (retention.ts), which trim ended slices from it. */
  get state(): SliceBookState {
    return this.book;
  }

  /** Counts for the start-up log. */
  stats(): { slices: number; live: number; intents: number } {
    return this.book.stats();
  }

  /** A slice the caller may see: its provider's, or any for an administrator. NOT_FOUND otherwise. */
  /** How many slices the book holds in each state (for metrics). */
  countByState(): Map<string, number> {
    const by = new Map<string, number>();
    for (const s of this.book.slices.values()) by.set(s.state, (by.get(s.state) ?? 0) + 1);
    return by;
  }

  owned(caller: Caller, urn: string, field = 'slice_urn'): SliceRecord {
    return ownedSlice(this.book, caller, urn, field);
  }

  /** GetSlice as recorded (no site is asked). */
  get(caller: Caller, urn: string): Slice {
    return this.book.slices.wire(ownedSlice(this.book, caller, urn));
  }

  /** GetSlice with every sliver as its site reports it now (see read.ts). */
  getLive(caller: Caller, urn: string): Promise<Slice> {
    return getLiveSlice(this.book, caller, urn);
  }

  /** ListSlices: the caller's slices (every slice for administrators), by URN, paged. */
  list(caller: Caller, req: ListSlicesRequest): ListSlicesResponse {
    return listSlices(this.book, caller, req);
  }

  /** CreateSlice (see create.ts); `signal` is the call's: an ended call records nothing. */
  create(caller: Caller & { account: NonNullable<Caller['account']> }, req: CreateSliceRequest, signal?: AbortSignal): Promise<Slice> {
    return createSlice(this.book, caller, req, signal);
  }

  /** DeleteSlice: every site, idempotent. DELETED, or DELETING while a site still has to confirm. */
  delete(caller: Caller, urn: string, signal?: AbortSignal): Promise<SliceWithResults> {
    return deleteSlice(this.book, caller, urn, signal);
  }

  /** RenewSlice (see renew.ts). */
  renew(caller: Caller, req: RenewSliceRequest, signal?: AbortSignal): Promise<SliceWithResults> {
    return renewSlice(this.book, caller, req, signal);
  }

  /** UpdateSliceUsers (see users.ts). */
  updateUsers(caller: Caller, req: UpdateSliceUsersRequest, signal?: AbortSignal): Promise<SliceWithResults> {
    return updateSliceUsers(this.book, caller, req, signal);
  }

  /** WatchSlice: a snapshot (or the retained events after `after_sequence`), then each event. */
  watch(caller: Caller, req: WatchSliceRequest, signal: AbortSignal): AsyncGenerator<WatchSliceResponse> {
    return watchSlice(this.book, caller, req, signal);
  }

  /** Throws FAILED_PRECONDITION unless the slice is live (for credentials). */
  requireLive(rec: SliceRecord): void {
    requireLive(rec);
  }

  /** Deletes expired slices at every site; returns how many. */
  sweep(): Promise<number> {
    return sweepExpired(this.book);
  }

  /** Retries delete and users intents whose sites did not confirm yet. */
  retryIntents(): Promise<void> {
    return retryIntents(this.book);
  }

  /** Settles what a previous process left unfinished, before the first call (see recovery.ts). */
  recover(): Promise<{ rolledBack: number; finished: number; pending: number }> {
    return recoverIntents(this.book);
  }

  /** Stops taking new work and waits for work in progress. */
  stop(): Promise<void> {
    return this.book.stop();
  }
}
