/** How `fedlab am` prints slivers, per-sliver results and advertised nodes. */
import {
  AllocationState,
  NodeHealth,
  OperationalState,
  SliverIsolation,
  Sliver,
  SliverResult,
} from '../../../services/generated/fedlab/v1/common.js';
import { AdvertisedNode } from '../../../services/generated/fedlab/v1/aggregate.js';
import { printable, printableJson } from '../../printable.js';
import { codeName } from '../../remote.js';
import { table } from '../../text-table.js';

/** An enum value's name without its prefix, e.g. ALLOCATION_STATE_PROVISIONED → PROVISIONED. */
function short(name: string | undefined, prefix: string): string {
  return name ? name.replace(prefix, '') : '?';
}

/** A sliver's allocation state, e.g. PROVISIONED. */
export function allocationName(s: AllocationState): string {
  return short(AllocationState[s], 'ALLOCATION_STATE_');
}

/** A sliver's operational state, e.g. READY. */
export function operationalName(s: OperationalState): string {
  return short(OperationalState[s], 'OPERATIONAL_STATE_');
}

function at(d: Date | undefined): string {
  return d ? d.toISOString().replace(/\.\d{3}Z$/, 'Z') : '-';
}

/** Slivers as a table: URN, node, allocation and operational state, expiry, error. */
export function sliverTable(slivers: readonly Sliver[]): string {
  if (slivers.length === 0) return 'no slivers';
  const rows = slivers.map((s) =>
    [s.urn, s.nodeUrn || '-', allocationName(s.allocationState), operationalName(s.operationalState), at(s.expiresAt), s.error || ''].map(
      printable,
    ),
  );
  return table(['SLIVER', 'NODE', 'ALLOCATION', 'OPERATIONAL', 'EXPIRES', 'ERROR'], rows);
}

/** Per-sliver results as a table: URN, node, OK or the status name and reason. */
export function resultTable(results: readonly SliverResult[]): string {
  if (results.length === 0) return 'no slivers';
  const rows = results.map((r) => {
    const code = r.status?.code ?? 0;
    const s = r.sliver;
    return [
      r.sliverUrn,
      r.nodeUrn || '-',
      code === 0 ? 'OK' : codeName(code),
      s ? `${allocationName(s.allocationState)}/${operationalName(s.operationalState)}` : '-',
      r.status?.reason ?? '',
    ].map(printable);
  });
  return table(['SLIVER', 'NODE', 'RESULT', 'STATE', 'REASON'], rows);
}

/** Whether every result is OK. */
export function allOk(results: readonly SliverResult[]): boolean {
  return results.every((r) => (r.status?.code ?? 0) === 0);
}

/** Per-sliver results as JSON (the wire's JSON form). */
export function resultsJson(results: readonly SliverResult[]): unknown[] {
  return results.map((r) => SliverResult.toJSON(r));
}

/** Slivers as JSON (the wire's JSON form). */
export function sliversJson(slivers: readonly Sliver[]): unknown[] {
  return slivers.map((s) => Sliver.toJSON(s));
}

/** Advertised nodes as a table. */
export function nodeTable(nodes: readonly AdvertisedNode[]): string {
  if (nodes.length === 0) return 'no nodes';
  const res = (r: AdvertisedNode['available']): string => (r ? `${r.cpuMillis}m/${r.memMb}MB/${r.diskMb}MB` : '-');
  const rows = nodes.map((n) =>
    [
      n.urn,
      short(NodeHealth[n.health], 'NODE_HEALTH_'),
      n.allocatable ? 'yes' : 'no',
      n.exclusive ? 'yes' : 'no',
      short(SliverIsolation[n.isolation], 'SLIVER_ISOLATION_'),
      res(n.available),
      res(n.capacity),
    ].map(printable),
  );
  return table(['NODE', 'HEALTH', 'FREE', 'EXCLUSIVE', 'ISOLATION', 'AVAILABLE (cpu/mem/disk)', 'CAPACITY'], rows);
}

/**
 * Prints per-sliver results (JSON `{results: [...]}` or a table) and, when any sliver failed, sets
 * exit status 1 (best-effort calls succeed as a call but not on every sliver).
 */
export function printResults(json: boolean | undefined, results: readonly SliverResult[], extra: Record<string, unknown> = {}): void {
  if (json) process.stdout.write(`${printableJson({ ...extra, results: resultsJson(results) }, 2)}\n`);
  else process.stdout.write(`${resultTable(results)}\n`);
  if (!allOk(results)) process.exitCode = 1;
}
