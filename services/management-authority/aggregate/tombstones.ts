/**
 * Tombstones fence stale calls. A call can reach the MA long after its caller
 * gave up on it: the MA was stopped (SIGSTOP, a long GC, a frozen VM) with
 * the call in its socket buffer, and the slice authority has since rolled the
 * slice back with a Delete. Without a fence the stale Allocate would run after
 * that Delete and hold capacity nobody will release until the hold ends.
 *
 * So a Delete of a whole slice by its slice authority leaves a tombstone
 * (slice URN, authority, time) in the Delete's own batch — also when the slice
 * is not here (yet): the stale Allocate may be the next call. An Allocate or
 * Provision of that slice by that authority that arrived before the Delete
 * (calls are numbered as they arrive, and a stale call sits ahead of the
 * Delete in the same connection) is then refused with ABORTED "superseded by
 * a delete", also when it was waiting on the slice's lock. A request arriving
 * after the Delete is new and allocates the slice anew; a repeated request id
 * the MA already answered gets that answer again (its slivers are gone, so it
 * allocates nothing). Tombstones are kept for {@link TOMBSTONE_RETENTION_MS}
 * (what the site knows of recently deleted slices) and then swept.
 */
import { AbortedError } from '../../core/errors.js';
import { parseUrn } from '../../core/identity/urn.js';
import type { AggregateState } from './aggregate-state.js';
import type { SliceLedger, SliceLedgerTx, Tombstone, TombstoneRecord } from './slice-ledger.js';

/** How long a tombstone is kept: as long as an Allocate request id is remembered after its slice is gone. */
export const TOMBSTONE_RETENTION_MS = 24 * 3_600_000;

/** What identifies a call to fence: the slice, its authority, and its arrival number ({@link AggregateState.arrive}). */
export interface FencedCall {
  readonly sliceUrn: string;
  readonly sliceAuthorityUrn: string;
  readonly arrival: number;
}

/** The tombstone that supersedes `call`, if one does. */
export function supersededBy(ledger: SliceLedger, call: FencedCall): Tombstone | undefined {
  const t = ledger.tombstones.get(call.sliceUrn);
  if (!t || t.record.sliceAuthorityUrn !== call.sliceAuthorityUrn) return undefined;
  return call.arrival < t.arrival ? t : undefined;
}

/** Throws ABORTED "superseded by a delete" when a tombstone supersedes `call`; `what` names the call. */
export function refuseSuperseded(ledger: SliceLedger, call: FencedCall, what: string): void {
  const t = supersededBy(ledger, call);
  if (!t) return;
  throw new AbortedError(
    `${what} of slice ${call.sliceUrn} was superseded by a delete: the slice authority deleted the slice here at ${new Date(t.record.deletedAt).toISOString()}, after this request was made; nothing was changed — a new request (with a new request id) allocates the slice again`,
    { rule: 'superseded' },
  );
}

/**
 * Adds, in `tx`, the tombstone a Delete of the whole slice by `sliceAuthorityUrn` leaves. Only for
 * slices in the authority's own domain (the only ones it can allocate here).
 */
export function leaveTombstone(
  ledger: SliceLedger,
  tx: SliceLedgerTx,
  call: { sliceUrn: string; sliceAuthorityUrn: string; arrival: number },
  now: number,
): void {
  if (parseUrn(call.sliceUrn).domain !== parseUrn(call.sliceAuthorityUrn).domain) return;
  const old = ledger.tombstones.get(call.sliceUrn);
  const rec: TombstoneRecord = { sliceUrn: call.sliceUrn, sliceAuthorityUrn: call.sliceAuthorityUrn, deletedAt: now };
  tx.putTombstone(rec, Math.max(call.arrival, old?.arrival ?? 0));
}

/** Sweeps tombstones older than {@link TOMBSTONE_RETENTION_MS}, in one batch; returns how many. */
export async function sweepTombstones(state: AggregateState): Promise<number> {
  const { ledger, deps } = state;
  const due = [...ledger.tombstones.values()].filter((t) => t.record.deletedAt + TOMBSTONE_RETENTION_MS <= state.now);
  if (due.length === 0) return 0;
  await state.mutate((tx, now) => {
    for (const t of due) {
      const cur = ledger.tombstones.get(t.record.sliceUrn);
      if (cur && cur.record.deletedAt + TOMBSTONE_RETENTION_MS <= now) tx.delTombstone(t.record.sliceUrn);
    }
  });
  deps.log.info({ swept: due.length }, 'old slice tombstones swept');
  return due.length;
}
