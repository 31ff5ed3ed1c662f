/**
 * The provider's one way of asking its slice authority whether a slice (and a sliver of it) is still
 * there: member removal asks it of a slice that refused an update, the sliver supervisor of a sliver its
 * node refuses. An authority that does not know the slice says NOT_FOUND; one that cannot answer now
 * (unreachable, busy) settles nothing.
 */
import { status as Status } from '@grpc/grpc-js';
import { plainOutcome } from '../core/rpc/outcome.js';
import { AllocationState } from '../generated/fedlab/v1/common.js';
import { SliceState, type Slice } from '../generated/fedlab/v1/slice_authority.js';
import type { Remotes } from './remotes.js';

/** Slice states after which none of the slice's slivers is held (the record is kept, its slivers still listed). */
const SLICE_ENDED: ReadonlySet<SliceState> = new Set([
  SliceState.SLICE_STATE_FAILED,
  SliceState.SLICE_STATE_DELETING,
  SliceState.SLICE_STATE_DELETED,
  SliceState.SLICE_STATE_EXPIRED,
]);

/** The slice as its authority has it now; 'gone' when the authority does not know it; undefined when it cannot answer. */
export async function sliceAtAuthority(
  remotes: Remotes,
  sliceUrn: string,
  options: { readonly deadlineMs: number; readonly signal: AbortSignal },
): Promise<Slice | 'gone' | undefined> {
  try {
    return (await remotes.sliceAuthority().getSlice({ sliceUrn }, options)).slice ?? 'gone';
  } catch (err) {
    return plainOutcome(err).code === Status.NOT_FOUND ? 'gone' : undefined;
  }
}

/**
 * Whether the slice still holds the sliver: not when the slice is gone or ended (FAILED, DELETING, DELETED,
 * EXPIRED), or the sliver is not in it or holds nothing (UNALLOCATED); undefined when the authority cannot answer.
 */
export async function sliceHoldsSliver(
  remotes: Remotes,
  sliceUrn: string,
  sliverUrn: string,
  options: { readonly deadlineMs: number; readonly signal: AbortSignal },
): Promise<boolean | undefined> {
  const slice = await sliceAtAuthority(remotes, sliceUrn, options);
  if (slice === undefined) return undefined;
  if (slice === 'gone' || SLICE_ENDED.has(slice.state)) return false;
  const sliver = slice.slivers.find((s) => s.urn === sliverUrn);
  return sliver !== undefined && sliver.allocationState !== AllocationState.ALLOCATION_STATE_UNALLOCATED;
}
