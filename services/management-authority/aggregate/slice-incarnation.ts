/**
 * A slice's incarnation at this site: the slice authority's random id of one
 * life of a slice (Allocate's `slice_incarnation`), kept with the slice's
 * record and handed to node managers in CreateSliver, where slice credentials
 * must be bound to it. Absent for slices allocated before incarnations.
 *
 * Kept beside records.ts's SliceRecord as an additive member of the stored
 * JSON (records written before it simply lack it).
 */
import { FailedPreconditionError, InvalidArgumentError } from '../../core/errors.js';
import { INCARNATION } from '../../core/credentials/index.js';
import type { SliceRecord } from '../records.js';

/** A slice record with its incarnation. */
export type IncarnatedSlice = SliceRecord & { readonly incarnation?: string };

/** The incarnation of a stored slice (undefined: made before incarnations, or no slice). */
export function incarnationOf(slice: SliceRecord | undefined): string | undefined {
  return (slice as IncarnatedSlice | undefined)?.incarnation;
}

/** Checks Allocate's `slice_incarnation` (absent, or 1 to 64 base64url characters). */
export function checkIncarnation(incarnation: string | undefined): string | undefined {
  if (incarnation !== undefined && !INCARNATION.test(incarnation))
    throw new InvalidArgumentError('slice_incarnation must be 1 to 64 base64url characters (or absent)', { field: 'slice_incarnation' });
  return incarnation;
}

/**
 * Whether an Allocate of incarnation `asked` may add to the `existing` slice record: the same
 * incarnation may; another one may not while the record still holds slivers (the earlier life must be
 * deleted first: FAILED_PRECONDITION); a record of another life that holds nothing is replaced.
 */
export function sameLife(existing: SliceRecord, asked: string | undefined, sliverCount: number): boolean {
  const held = incarnationOf(existing);
  if (held === asked) return true;
  if (sliverCount > 0) {
    throw new FailedPreconditionError(
      `slice ${existing.urn} is held here for ${held ? `incarnation ${held}` : 'an earlier life (made before incarnations)'}, not for ${asked ? `incarnation ${asked}` : 'a slice without incarnation'}; the earlier slice of that name must be deleted here first`,
      { rule: 'slice-incarnation' },
    );
  }
  return false;
}
