/**
 * What an Aggregate call acts on: the `urns` it names (one slice, or slivers
 * of one slice) read from the ledger, and the check that the caller's chain
 * belongs to that slice's authority and covers every node it touches.
 */
import { InvalidArgumentError, NotFoundError, PermissionDeniedError } from '../../core/errors.js';
import { parseUrn } from '../../core/identity/urn.js';
import { urnField } from '../../core/validate.js';
import type { ChainAccess } from '../access.js';
import type { SliceRecord, SliverRecord } from '../records.js';
import type { SliceLedger } from './slice-ledger.js';

/** `urns`: one slice URN, or sliver URNs of one slice; NOT_FOUND for what this site does not hold. */
export function resolveTargets(ledger: SliceLedger, urns: readonly string[]): { slice: SliceRecord; slivers: SliverRecord[] } {
  if (!Array.isArray(urns) || urns.length === 0)
    throw new InvalidArgumentError('urns must name one slice, or slivers of one slice', { field: 'urns' });
  if (urns.length > 10_000) throw new InvalidArgumentError('at most 10000 urns per call', { field: 'urns' });
  const parsed = urns.map((u, i) => urnField(`urns[${i}]`, u, targetKind(u, i)));
  if (parsed.some((p) => p.kind === 'slice')) {
    if (urns.length !== 1)
      throw new InvalidArgumentError('urns holds a slice URN: name that one slice alone, or only sliver URNs', { field: 'urns' });
    const slice = ledger.slices.get(urns[0] as string);
    if (!slice) throw new NotFoundError(`no slice ${urns[0]} at this site; allocate it first`);
    return { slice, slivers: ledger.sliversOf(slice.urn) };
  }
  const slivers: SliverRecord[] = [];
  for (const u of urns) {
    const s = ledger.slivers.get(u);
    if (!s) throw new NotFoundError(`no sliver ${u} at this site; it was never allocated here, or it expired or was deleted`);
    slivers.push(s);
  }
  const sliceUrn = (slivers[0] as SliverRecord).sliceUrn;
  if (slivers.some((s) => s.sliceUrn !== sliceUrn))
    throw new InvalidArgumentError('urns names slivers of more than one slice; name slivers of one slice per call', { field: 'urns' });
  const slice = ledger.slices.get(sliceUrn);
  if (!slice) throw new NotFoundError(`no slice ${sliceUrn} at this site`);
  return { slice, slivers: [...new Set(slivers)] };
}

/** Checks that the chain belongs to the slice's authority and covers every node touched. */
export function requireOwnSlice(access: ChainAccess, slice: SliceRecord, slivers: readonly SliverRecord[]): void {
  const sa = access.sliceAuthority;
  if (sa.urn !== slice.sliceAuthorityUrn || sa.kid !== slice.sliceAuthorityKid) {
    throw new PermissionDeniedError(
      `slice ${slice.urn} was created here by ${slice.sliceAuthorityUrn}; a chain issued to ${sa.urn} cannot act on it`,
      { rule: 'slice-authority' },
    );
  }
  for (const s of slivers) if (s.allocation !== 'unallocated') access.requireNode(s.nodeUrn);
}

/** The kind `urns[i]` must have: slice or sliver (INVALID_ARGUMENT otherwise). */
export function targetKind(u: string, i: number): 'slice' | 'sliver' {
  try {
    const k = parseUrn(u).kind;
    if (k === 'slice' || k === 'sliver') return k;
  } catch {
    // urnField reports the malformed URN.
  }
  throw new InvalidArgumentError(`urns[${i}] must be a slice or sliver URN`, { field: 'urns' });
}
