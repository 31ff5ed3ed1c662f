/**
 * The aggregate's sweepers: holds whose time ran out are released, slivers
 * past their expiry are forgotten (deleted first where the MA made something
 * for them), and old Allocate request ids and slice tombstones are forgotten.
 */
import type { SliverRecord } from '../records.js';
import type { AggregateState } from './aggregate-state.js';
import { deleteLocked } from './lifecycle.js';
import type { SliceLedger, SliceLedgerTx } from './slice-ledger.js';
import { sweepTombstones } from './tombstones.js';

/** How long an Allocate request id is remembered after its slice is gone here (a retry within it gets the same answer). */
export const ALLOCATE_REQUEST_RETENTION_MS = 24 * 3_600_000;
/** How often the sweeper looks for request ids to forget. */
export const ALLOCATE_REQUEST_SCAN_MS = 10 * 60_000;

/** Deletes, in `tx`, every hold that ended by `now` (so that it does not block an admission). */
export function releaseExpiredHolds(ledger: SliceLedger, tx: SliceLedgerTx, now: number): void {
  for (const urn of ledger.holds) {
    const s = ledger.slivers.get(urn);
    if (s && !s.phase && s.holdExpiresAt !== undefined && s.holdExpiresAt <= now) tx.delSliver(urn);
  }
}

/** The sweeps the role runs on a timer (and tests run by hand). */
export class Sweeper {
  private lastRequestScan = -Infinity;

  constructor(private readonly state: AggregateState) {}

  /**
   * Releases expired holds, and forgets slivers whose lifetime ended (their
   * node managers reap them on their own) and slices left with no sliver.
   */
  async sweep(): Promise<number> {
    const { ledger, deps } = this.state;
    const now = this.state.now;
    const direct: string[] = [];
    const onNodes = new Map<string, SliverRecord[]>();
    for (const urn of ledger.holds) {
      const s = ledger.slivers.get(urn);
      if (s && !s.phase && s.holdExpiresAt !== undefined && s.holdExpiresAt <= now) direct.push(urn);
    }
    for (const s of ledger.slivers.values()) {
      if (s.phase || s.allocation === 'allocated' || s.expiresAt > now) continue;
      if (s.allocation === 'unallocated') direct.push(s.urn);
      else onNodes.set(s.sliceUrn, [...(onNodes.get(s.sliceUrn) ?? []), s]);
    }
    let n = 0;
    if (direct.length) {
      n += await this.state.mutate((tx, t) => {
        const touched = new Set<string>();
        const gone = new Set<string>();
        for (const urn of direct) {
          const s = ledger.slivers.get(urn);
          if (!s || s.phase) continue;
          const expired =
            s.allocation === 'allocated'
              ? s.holdExpiresAt !== undefined && s.holdExpiresAt <= t
              : s.allocation === 'unallocated' && s.expiresAt <= t;
          if (!expired) continue;
          tx.delSliver(urn);
          gone.add(urn);
          touched.add(s.sliceUrn);
          deps.log.info(
            { sliver: urn, slice: s.sliceUrn, node: s.nodeUrn },
            s.allocation === 'allocated' ? 'allocation hold expired; released' : 'swapped-out sliver expired; forgotten',
          );
        }
        for (const slice of touched) if (ledger.sliversOf(slice).every((s) => gone.has(s.urn))) tx.delSlice(slice);
        return gone.size;
      });
    }
    // Provisioned slivers past their expiry: their nodes reap them on their own; the MA deletes what it made (namespaces) and forgets them.
    for (const [slice, slivers] of onNodes) {
      await this.state.sliceLocks.run(slice, async () => {
        const due = slivers.filter((s) => {
          const cur = ledger.slivers.get(s.urn);
          return cur && !cur.phase && cur.allocation === 'provisioned' && cur.expiresAt <= this.state.now;
        });
        if (due.length) {
          deps.log.info({ slice, slivers: due.length }, 'slivers expired; deleting');
          await deleteLocked(this.state, slice, due, Infinity);
          n += due.length;
        }
      });
    }
    await this.forgetAllocateRequests();
    await sweepTombstones(this.state);
    return n;
  }

  /**
   * Forgets Allocate request ids whose slice is gone here and that are older than
   * {@link ALLOCATE_REQUEST_RETENTION_MS}: a retry that late gets a new allocation. The table is
   * scanned at most every {@link ALLOCATE_REQUEST_SCAN_MS}, and one batch deletes what is due. The
   * sweeper calls it; returns how many were forgotten.
   */
  async forgetAllocateRequests(): Promise<number> {
    const { ledger, deps } = this.state;
    const now = this.state.now;
    if (now - this.lastRequestScan < ALLOCATE_REQUEST_SCAN_MS) return 0;
    this.lastRequestScan = now;
    const due: string[] = [];
    for await (const [key, rec] of ledger.allocationTable.entries()) {
      if (!ledger.slices.has(rec.sliceUrn) && (rec.createdAt ?? 0) + ALLOCATE_REQUEST_RETENTION_MS <= now) due.push(key);
    }
    if (due.length === 0) return 0;
    // Checked again under each slice's lock would serialise the sweep behind every busy slice; the
    // mutex is enough: an Allocate that re-creates the slice writes its own, newer request key.
    await this.state.mutate((tx) => {
      for (const key of due) tx.delAllocation(key);
    });
    deps.log.info({ forgotten: due.length }, 'old Allocate request ids forgotten');
    return due.length;
  }
}
