/** How `fedlab sliver ls|show|start|stop|renew` print slivers: a table, one sliver in detail, JSON. */
import { AllocationState, OperationalState, Sliver, SliverIsolation } from '../../../services/generated/fedlab/v1/common.js';
import { counted, enumName, printable, printableJson } from '../../printable.js';
import { table } from '../../text-table.js';

/** A time as RFC 3339 without milliseconds (`-` when absent). */
function at(d: Date | undefined): string {
  return d ? d.toISOString().replace(/\.\d{3}Z$/, 'Z') : '-';
}

/** A sliver's allocation state, e.g. PROVISIONED. */
export function allocation(s: Sliver): string {
  return enumName(AllocationState, s.allocationState, 'ALLOCATION_STATE_');
}

/** A sliver's operational state, e.g. READY. */
export function operational(s: Sliver): string {
  return enumName(OperationalState, s.operationalState, 'OPERATIONAL_STATE_');
}

/** Slivers as a table (every cell printable: errors are the node's text), then how many. */
export function sliverLsTable(slivers: readonly Sliver[]): string {
  if (slivers.length === 0) return 'no slivers';
  const rows = slivers.map((s) => [s.urn, s.sliceUrn, allocation(s), operational(s), at(s.expiresAt), s.error].map(printable));
  return `${table(['SLIVER', 'SLICE', 'ALLOCATION', 'OPERATIONAL', 'EXPIRES', 'ERROR'], rows)}\n${counted(slivers.length, 'sliver')}`;
}

/** One sliver in detail, a field per line. */
export function sliverDetail(s: Sliver): string {
  const r = s.resources;
  const fields: [string, string][] = [
    ['sliver', s.urn],
    ['slice', s.sliceUrn],
    ['node', s.nodeUrn || '-'],
    ['state', `${allocation(s)}/${operational(s)}`],
    ['expires', at(s.expiresAt)],
    ['created', at(s.createdAt)],
    ['updated', at(s.updatedAt)],
    ['resources', r ? `${r.cpuMillis} mCPU, ${r.memMb} MB memory, ${r.diskMb} MB disk, ${r.pids} pids` : '-'],
    ['isolation', enumName(SliverIsolation, s.isolation, 'SLIVER_ISOLATION_')],
    ['exclusive', s.exclusive ? 'yes' : 'no'],
    ['provider', s.providerUrn || '-'],
    ['slice authority', s.sliceAuthorityUrn || '-'],
    ['ssh', s.ssh ? `${s.ssh.username}@${s.ssh.endpoint?.address ?? '?'}` : '-'],
  ];
  if (s.error) fields.push(['error', s.error]);
  const width = Math.max(...fields.map(([k]) => k.length)) + 1;
  return fields.map(([k, v]) => `${`${k}:`.padEnd(width)} ${printable(v)}`).join('\n');
}

/** One sliver as JSON (the wire's JSON form) under `sliver`, with `extra` fields first. */
export function sliverJson(s: Sliver, extra: Record<string, unknown> = {}): string {
  return printableJson({ ...extra, sliver: Sliver.toJSON(s) }, 2);
}
