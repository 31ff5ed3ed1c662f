/**
 * The slice authority's slices in memory, with what the reads need kept beside them: the URNs of each
 * provider's slices and of all slices in URN order (ListSlices pages through its caller's slices
 * only, from its page token by binary search, instead of filtering and sorting every slice per
 * call), and the wire form of each record, made once per record. Records are immutable: every
 * change sets a new record object, so a wire form cached by the record's identity is dropped with
 * the record it was made from, and a changed slice is never answered from an old one.
 */
import type { Slice } from '../../generated/fedlab/v1/slice_authority.js';
import { sliceToWire, type SliceRecord } from '../records.js';

/** The first index of `sorted` whose URN is greater than `after`. */
function firstAfter(sorted: readonly string[], after: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as string) <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Puts `urn` into the sorted list (once). */
function insertSorted(sorted: string[], urn: string): void {
  const i = firstAfter(sorted, urn);
  if (sorted[i - 1] !== urn) sorted.splice(i, 0, urn);
}

/** Takes `urn` out of the sorted list, if there. */
function removeSorted(sorted: string[], urn: string): void {
  const i = firstAfter(sorted, urn) - 1;
  if (i >= 0 && sorted[i] === urn) sorted.splice(i, 1);
}

/** Slices by URN, indexed by provider and in URN order; every change goes through set/delete/clear. */
export class SliceIndex extends Map<string, SliceRecord> {
  private sortedAll: string[] = [];
  private byProviderUrn = new Map<string, string[]>();
  private readonly wireCache = new WeakMap<SliceRecord, Slice>();

  // Empty at first (Map's constructor would call set() with entries before these fields exist).
  constructor() {
    super();
  }

  override set(urn: string, rec: SliceRecord): this {
    const old = super.get(urn);
    if (old && old.providerUrn !== rec.providerUrn) this.unindex(urn, old.providerUrn);
    if (!old || old.providerUrn !== rec.providerUrn) {
      insertSorted(this.sortedAll, urn);
      const mine = this.byProviderUrn.get(rec.providerUrn) ?? [];
      if (mine.length === 0) this.byProviderUrn.set(rec.providerUrn, mine);
      insertSorted(mine, urn);
    }
    return super.set(urn, rec);
  }

  override delete(urn: string): boolean {
    const old = super.get(urn);
    if (old) this.unindex(urn, old.providerUrn);
    return super.delete(urn);
  }

  override clear(): void {
    this.sortedAll = [];
    this.byProviderUrn = new Map();
    super.clear();
  }

  /**
   * Up to `limit` records in URN order after `after` (exclusive) that `keep` accepts: the provider's
   * (every slice when `providerUrn` is undefined). Stops as soon as it has `limit`.
   */
  after(providerUrn: string | undefined, after: string, limit: number, keep: (rec: SliceRecord) => boolean): SliceRecord[] {
    const sorted = providerUrn === undefined ? this.sortedAll : (this.byProviderUrn.get(providerUrn) ?? []);
    const out: SliceRecord[] = [];
    for (let i = firstAfter(sorted, after); i < sorted.length && out.length < limit; i++) {
      const rec = super.get(sorted[i] as string);
      if (rec && keep(rec)) out.push(rec);
    }
    return out;
  }

  /**
   * The wire form of a record, made once per record object. Shared between answers: callers only
   * serialise it and must not change it.
   */
  wire(rec: SliceRecord): Slice {
    let w = this.wireCache.get(rec);
    if (!w) {
      w = sliceToWire(rec);
      this.wireCache.set(rec, w);
    }
    return w;
  }

  private unindex(urn: string, providerUrn: string): void {
    removeSorted(this.sortedAll, urn);
    const mine = this.byProviderUrn.get(providerUrn);
    if (!mine) return;
    removeSorted(mine, urn);
    if (mine.length === 0) this.byProviderUrn.delete(providerUrn);
  }
}
