/**
 * Reading slivers and per-sliver results as the sites report them: which
 * exist, which were started, which changed, which failed, and releasing
 * failed ones with a reason.
 */
import { status as Status } from '@grpc/grpc-js';
import { AllocationState, OperationalState, type Sliver, type SliverResult } from '../../generated/fedlab/v1/common.js';
import { sliversOf, type SiteRecord } from '../records.js';

/** A sliver that exists (or existed) at its site, rather than one reported as failed and released. */
export function isLive(s: Sliver): boolean {
  return s.allocationState !== AllocationState.ALLOCATION_STATE_UNALLOCATED && !s.error;
}

/** Whether a provisioned sliver was started (it is past NOTREADY: configuring, ready, or beyond). */
export function isStarted(s: Sliver | undefined): boolean {
  const state = s?.operationalState;
  return state === OperationalState.OPERATIONAL_STATE_CONFIGURING || state === OperationalState.OPERATIONAL_STATE_READY;
}

/** Whether a sliver's state as the SA shows it differs. */
export function sliverChanged(a: Sliver, b: Sliver): boolean {
  return (
    a.allocationState !== b.allocationState ||
    a.operationalState !== b.operationalState ||
    a.error !== b.error ||
    a.expiresAt?.getTime() !== b.expiresAt?.getTime()
  );
}

/** A site's live slivers. */
export function liveSlivers(s: SiteRecord): Sliver[] {
  return sliversOf(s).filter(isLive);
}

/** Whether the site still holds a sliver of the slice (a failed one included: its site may still have it). */
export function holdsSlivers(s: SiteRecord): boolean {
  return sliversOf(s).some((x) => x.allocationState !== AllocationState.ALLOCATION_STATE_UNALLOCATED);
}

/** Slivers reported as failed and released, with why. */
export function released(slivers: readonly Sliver[], why?: string): Sliver[] {
  return slivers.map((x) => ({
    ...x,
    allocationState: AllocationState.ALLOCATION_STATE_UNALLOCATED,
    operationalState: OperationalState.OPERATIONAL_STATE_FAILED,
    error: x.error || why || 'released',
  }));
}

/** The per-sliver results that failed. */
export function failedOf(results: readonly SliverResult[]): SliverResult[] {
  return results.filter((r) => (r.status?.code ?? Status.OK) !== Status.OK);
}

/** One failed sliver result, in words. */
export function sliverLine(r: SliverResult): string {
  return `${r.nodeUrn || r.sliverUrn}: ${r.status?.reason || Status[r.status?.code ?? Status.UNKNOWN]}`;
}
