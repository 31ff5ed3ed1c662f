/**
 * Tombstones fence stale creates. A CreateSliver can reach the node long
 * after its caller gave up on it: the node manager was stopped (SIGSTOP, a
 * frozen VM) with the call in its socket buffer, and the MA has since undone
 * it with a DeleteSliver — which the node, not having the sliver yet, answered
 * `existed = false`. Without a fence the stale create would then run and leave
 * a sliver nobody's books explain (an orphan).
 *
 * So a DeleteSliver leaves a tombstone (sliver URN, time, the request ids the
 * sliver was made with) in the same batch as the delete — also when the
 * sliver is not here. A CreateSliver of that URN is then refused with ABORTED
 * "superseded by a delete", changing nothing, when
 * - it arrived before the delete was committed (calls are numbered as they
 *   arrive, and a stale call sits ahead of the delete in the connection), with
 *   any request id; or
 * - it repeats a request id the deleted sliver was made with (a retry of an
 *   answered create must not bring the sliver back), whenever it arrives.
 * A create with a new request id that arrives after the delete makes the
 * sliver anew: an MA reuses a sliver's URN when it swaps a slice back in or
 * provisions again after an undo, always with a new request id.
 *
 * Arrival numbers live in this process; tombstones loaded from disk count as
 * older than every call (no call survives a restart). Tombstones are kept for
 * {@link TOMBSTONE_RETENTION_MS} and swept in the batches that write new ones
 * (and at reconcile).
 */
import { AbortedError } from '../core/errors.js';
import type { Batch, Store, Table } from '../core/store/store.js';

/**
 * How long a tombstone is kept: longer than an MA's default allocation hold (10 minutes) plus its
 * longest node call deadline, so every stale create and every retry of a deleted sliver's request id
 * an MA can still send meets it.
 */
export const TOMBSTONE_RETENTION_MS = 3_600_000;

/** Most old tombstones one batch sweeps (the rest go with the next). */
const SWEEP_PER_BATCH = 256;

/** A tombstone as stored (table `sliver-tombstones`, keyed by sliver URN). */
export interface SliverTombstoneRecord {
  readonly sliverUrn: string;
  /** When the delete was committed (ms, node clock). */
  readonly deletedAt: number;
  /** Request keys (`caller requestId`) of the creates that made the sliver; empty when it was not here. */
  readonly requests: readonly string[];
}

/** What a call that changes slivers brings for fencing: its signal, and its arrival number ({@link SliverTombstones.arrive}). */
export interface CallFence {
  /** The call's signal: once it aborts (deadline, cancel), nothing more of the call is committed. */
  readonly signal?: AbortSignal;
  /** The call's arrival number, taken before the handler's first await. */
  readonly arrival?: number;
}

/** A tombstone in memory: its record and the last arrival number it fences (0: loaded from disk). */
interface Tombstone {
  readonly record: SliverTombstoneRecord;
  readonly fences: number;
}

/** The node's tombstones: the table, an in-memory copy, and the arrival counter. */
export class SliverTombstones {
  readonly table: Table<SliverTombstoneRecord>;
  private readonly byUrn = new Map<string, Tombstone>();
  private arrivals = 0;

  constructor(store: Store) {
    this.table = store.table<SliverTombstoneRecord>('sliver-tombstones');
  }

  /** Numbers a call as it arrives: later calls get higher numbers (in this process). */
  arrive(): number {
    return ++this.arrivals;
  }

  /** Number of tombstones held. */
  get count(): number {
    return this.byUrn.size;
  }

  /** The tombstone of a sliver URN, if any. */
  get(sliverUrn: string): SliverTombstoneRecord | undefined {
    return this.byUrn.get(sliverUrn)?.record;
  }

  /** Loads the table into memory (every loaded tombstone is older than every call of this process). */
  async load(): Promise<void> {
    this.byUrn.clear();
    const records = await this.table.values();
    // Oldest first, as deletes add them: the sweep stops at the first one still kept.
    records.sort((a, b) => a.deletedAt - b.deletedAt);
    for (const record of records) this.byUrn.set(record.sliverUrn, { record, fences: 0 });
  }

  /**
   * Throws ABORTED "superseded by a delete" when a tombstone of `sliverUrn` supersedes a create that
   * arrived as `arrival` with request key `requestKey`. Run under the admission mutex.
   */
  refuseSuperseded(sliverUrn: string, requestKey: string, arrival: number | undefined): void {
    const t = this.byUrn.get(sliverUrn);
    if (!t) return;
    const arrivedBefore = arrival !== undefined && arrival <= t.fences;
    if (!arrivedBefore && !t.record.requests.includes(requestKey)) return;
    const why = arrivedBefore ? 'after this request was made' : 'and this request id is the one that made it';
    throw new AbortedError(
      `CreateSliver of ${sliverUrn} was superseded by a delete: the sliver was deleted here at ${new Date(t.record.deletedAt).toISOString()}, ${why}; nothing was changed — a new request (with a new request id) creates it again`,
      { rule: 'superseded' },
    );
  }

  /**
   * Adds to `batch` the tombstone a DeleteSliver of `sliverUrn` leaves (merged with one already
   * there) and the deletion of tombstones past their retention; returns what to apply to memory
   * once the batch is written. Run under the admission mutex, and write the batch under it too.
   */
  stage(batch: Batch, sliverUrn: string, requests: readonly string[], now: number): () => void {
    const old = this.byUrn.get(sliverUrn);
    const record: SliverTombstoneRecord = {
      sliverUrn,
      deletedAt: now,
      requests: [...new Set([...(old?.record.requests ?? []), ...requests])],
    };
    // Every call that has arrived so far is fenced: the delete is committed before any of them admits.
    const next: Tombstone = { record, fences: this.arrivals };
    batch.put(this.table, sliverUrn, record);
    const swept = this.stageSweep(batch, now, sliverUrn);
    return () => {
      for (const urn of swept) this.byUrn.delete(urn);
      // Moved to the end: the map stays in deletion order.
      this.byUrn.delete(sliverUrn);
      this.byUrn.set(sliverUrn, next);
    };
  }

  /** Adds to `batch` the deletion of tombstones past their retention; returns what to apply to memory once it is written. */
  stageSweepOnly(batch: Batch, now: number): () => void {
    const swept = this.stageSweep(batch, now);
    return () => {
      for (const urn of swept) this.byUrn.delete(urn);
    };
  }

  /** The oldest tombstones past their retention (a bounded number per batch, never `keep`), deleted in `batch`. */
  private stageSweep(batch: Batch, now: number, keep?: string): string[] {
    const swept: string[] = [];
    for (const [urn, t] of this.byUrn) {
      if (swept.length >= SWEEP_PER_BATCH || t.record.deletedAt + TOMBSTONE_RETENTION_MS > now) break;
      if (urn === keep) continue;
      batch.del(this.table, urn);
      swept.push(urn);
    }
    return swept;
  }
}
