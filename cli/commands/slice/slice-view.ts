/** How the `fedlab slice` commands show slices: tables, one slice in detail, per-site results, why a slice failed. */
import { status } from '@grpc/grpc-js';
import { AllocationState, OperationalState, SiteStyle, SliceMode } from '../../../services/generated/fedlab/v1/common.js';
import { SliceState, type SiteResult, type Slice } from '../../../services/generated/fedlab/v1/slice_authority.js';
import { codeName } from '../../remote.js';
import { table } from '../../text-table.js';

/** A slice state's name. */
export const STATE: Record<number, string> = {
  [SliceState.SLICE_STATE_PENDING]: 'PENDING',
  [SliceState.SLICE_STATE_READY]: 'READY',
  [SliceState.SLICE_STATE_PARTIAL]: 'PARTIAL',
  [SliceState.SLICE_STATE_FAILED]: 'FAILED',
  [SliceState.SLICE_STATE_DELETING]: 'DELETING',
  [SliceState.SLICE_STATE_DELETED]: 'DELETED',
  [SliceState.SLICE_STATE_EXPIRED]: 'EXPIRED',
};
const STYLE: Record<number, string> = {
  [SiteStyle.SITE_STYLE_PLANETLAB]: 'planetlab',
  [SiteStyle.SITE_STYLE_EMULAB]: 'emulab',
  [SiteStyle.SITE_STYLE_PROTOGENI]: 'protogeni',
};
const ALLOC: Record<number, string> = {
  [AllocationState.ALLOCATION_STATE_UNALLOCATED]: 'unallocated',
  [AllocationState.ALLOCATION_STATE_ALLOCATED]: 'allocated',
  [AllocationState.ALLOCATION_STATE_PROVISIONED]: 'provisioned',
};
const OPSTATE: Record<number, string> = {
  [OperationalState.OPERATIONAL_STATE_PENDING]: 'pending',
  [OperationalState.OPERATIONAL_STATE_NOTREADY]: 'notready',
  [OperationalState.OPERATIONAL_STATE_CONFIGURING]: 'configuring',
  [OperationalState.OPERATIONAL_STATE_READY]: 'ready',
  [OperationalState.OPERATIONAL_STATE_STOPPING]: 'stopping',
  [OperationalState.OPERATIONAL_STATE_STOPPED]: 'stopped',
  [OperationalState.OPERATIONAL_STATE_FAILED]: 'failed',
};

/** A time as RFC 3339 without milliseconds (`-` when absent). */
export function time(at: Date | undefined): string {
  return at ? at.toISOString().replace(/\.\d{3}Z$/, 'Z') : '-';
}

function liveSlivers(s: Slice): Slice['slivers'] {
  return s.slivers.filter((x) => x.allocationState === AllocationState.ALLOCATION_STATE_PROVISIONED);
}

/** The slices as a table. */
export function sliceTable(slices: readonly Slice[]): string {
  return table(
    ['SLICE', 'STATE', 'SITES', 'SLIVERS (ready/live)', 'EXPIRES', 'PROVIDER'],
    slices.map((s) => [
      s.urn,
      STATE[s.state] ?? '?',
      s.sites.map((x) => (x.status?.code ? `${x.site}!` : x.site)).join(','),
      `${liveSlivers(s).filter((x) => x.operationalState === OperationalState.OPERATIONAL_STATE_READY).length}/${liveSlivers(s).length}`,
      time(s.expiresAt),
      s.providerUrn,
    ]),
  );
}

/** One slice in detail: header, sites, slivers. */
export function sliceDetail(s: Slice): string {
  const head = [
    `slice      ${s.urn}`,
    `state      ${STATE[s.state] ?? '?'}`,
    `provider   ${s.providerUrn}`,
    `mode       ${s.mode === SliceMode.SLICE_MODE_BEST_EFFORT ? 'best effort' : 'all or nothing'}`,
    `created    ${time(s.createdAt)}`,
    `expires    ${time(s.expiresAt)}`,
    ...(s.description ? [`about      ${s.description}`] : []),
  ].join('\n');
  const sites = table(
    ['SITE', 'STYLE', 'STATUS', 'EXPIRES', 'REASON'],
    s.sites.map((x) => [x.site, STYLE[x.style] ?? '-', codeName(x.status?.code ?? status.OK), time(x.expiresAt), x.status?.reason ?? '']),
  );
  const slivers = table(
    ['SLIVER', 'NODE', 'ALLOCATION', 'STATE', 'EXPIRES', 'ERROR'],
    s.slivers.map((x) => [
      x.urn,
      x.nodeUrn || '-',
      ALLOC[x.allocationState] ?? '-',
      OPSTATE[x.operationalState] ?? '-',
      time(x.expiresAt),
      x.error,
    ]),
  );
  return `${head}\n\n${sites}\n\n${slivers.split('\n').length > 1 ? slivers : 'no slivers'}`;
}

/** Each site's part of a call: its status, how many slivers went through, why not. */
export function resultsTable(results: readonly SiteResult[]): string {
  return table(
    ['SITE', 'STATUS', 'SLIVERS OK', 'REASON'],
    results.map((r) => [
      r.site,
      codeName(r.status?.code ?? status.OK),
      `${r.slivers.filter((x) => !x.status?.code).length}/${r.slivers.length}`,
      r.status?.reason ?? '',
    ]),
  );
}

/** Why a slice failed, site by site and node by node (for stderr). */
export function failureLines(s: Slice): string[] {
  const out: string[] = [];
  for (const site of s.sites) if (site.status?.code) out.push(`site ${site.site}: ${codeName(site.status.code)}: ${site.status.reason}`);
  for (const x of s.slivers) if (x.error) out.push(`node ${x.nodeUrn || '(none)'} (${x.urn}): ${x.error}`);
  return out;
}
