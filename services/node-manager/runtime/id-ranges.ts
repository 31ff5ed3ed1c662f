/**
 * Subordinate id ranges of slivers' user namespaces: slot n maps ids 0..65535
 * inside a sliver to `base + n * 65536` and up outside. A range is held by the
 * sliver record that names it (written in the same atomic batch as the
 * record, freed with it). A slot is free when its host ids overlap no range a
 * record holds, whatever base that record was made under, so no two live
 * slivers ever share an id even after `container.uid_base` changed.
 */
import { ResourceExhaustedError } from '../../core/errors.js';

/** Ids per sliver: a whole 16-bit id space, as distributions expect. */
export const IDS_PER_SLIVER = 65_536;

/** Where the ranges start and how many there are. */
export interface IdRangeSettings {
  /** First host id of slot 0. */
  readonly base: number;
  /** Number of slots (the most slivers with a user namespace at once). */
  readonly count: number;
}

/** One sliver's range: host ids `[hostId, hostId + size)` are ids `[0, size)` inside. */
export interface IdRange {
  readonly slot: number;
  readonly hostId: number;
  readonly size: number;
}

/** The range of a slot. */
export function rangeOf(slot: number, s: IdRangeSettings): IdRange {
  return { slot, hostId: s.base + slot * IDS_PER_SLIVER, size: IDS_PER_SLIVER };
}

/** Whether two ranges share a host id. */
export function rangesOverlap(a: Pick<IdRange, 'hostId' | 'size'>, b: Pick<IdRange, 'hostId' | 'size'>): boolean {
  return a.hostId < b.hostId + b.size && b.hostId < a.hostId + a.size;
}

/** The lowest slot whose host ids overlap none of `used` (the ranges records hold), or RESOURCE_EXHAUSTED naming the limit. */
export function allocateRange(used: readonly IdRange[], s: IdRangeSettings): IdRange {
  for (let slot = 0; slot < s.count; slot++) {
    const r = rangeOf(slot, s);
    if (!used.some((u) => rangesOverlap(u, r))) return r;
  }
  throw new ResourceExhaustedError(
    `no user id range is free: all ${s.count} ranges of ${IDS_PER_SLIVER} ids (container.id_ranges) overlap ranges held by slivers; delete a sliver or raise container.id_ranges`,
    { rule: 'id_ranges' },
  );
}
