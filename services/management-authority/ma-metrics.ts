/**
 * The management authority's gauges, read from its registry and ledger at
 * each scrape: nodes by health, capacity and what is committed (site totals
 * per resource, so the label set stays bounded), slivers by allocation state
 * and open holds; heartbeats accepted, unary or on a HeartbeatStream (a
 * stream is one call however many beats it carries, so `fedlab_rpc_calls_total`
 * does not count them).
 */
import type { ServiceMetrics } from '../core/metrics/service-metrics.js';
import type { SliceLedger } from './aggregate/slice-ledger.js';
import type { NodeRegistry } from './node-registry.js';
import type { Resources } from './records.js';

const RESOURCES: readonly (keyof Resources)[] = ['cpuMillis', 'memMb', 'diskMb', 'pids'];
const RESOURCE_NAMES: Record<keyof Resources, string> = { cpuMillis: 'cpu_millis', memMb: 'mem_mb', diskMb: 'disk_mb', pids: 'pids' };

/** Registers the MA's gauges on `metrics`. */
export function registerMaMetrics(metrics: ServiceMetrics, registry: NodeRegistry, ledger: SliceLedger): void {
  metrics.gauge('fedlab_ma_nodes', 'Enrolled nodes by health', ['health'], () => {
    let up = 0;
    for (const n of registry.all()) if (n.up) up++;
    return [
      [{ health: 'up' }, up],
      [{ health: 'down' }, registry.size - up],
    ];
  });
  metrics.gauge('fedlab_ma_capacity', 'Capacity of the nodes that are UP, summed over the site, by resource', ['resource'], () => {
    const sum: Record<string, number> = {};
    for (const n of registry.all()) if (n.up) for (const r of RESOURCES) sum[r] = (sum[r] ?? 0) + n.capacity[r];
    return RESOURCES.map((r) => [{ resource: RESOURCE_NAMES[r] }, sum[r] ?? 0] as const);
  });
  metrics.gauge('fedlab_ma_committed', 'Resources held or provisioned by slices, summed over the site, by resource', ['resource'], () => {
    const sum: Record<string, number> = {};
    for (const urn of registry.urns) {
      const committed = ledger.use(urn).committed;
      for (const r of RESOURCES) sum[r] = (sum[r] ?? 0) + committed[r];
    }
    return RESOURCES.map((r) => [{ resource: RESOURCE_NAMES[r] }, sum[r] ?? 0] as const);
  });
  metrics.gauge('fedlab_ma_slivers', 'Slivers in the books by allocation state', ['allocation'], () => {
    const by: Record<string, number> = { allocated: 0, provisioned: 0, unallocated: 0 };
    for (const s of ledger.slivers.values()) by[s.allocation] = (by[s.allocation] ?? 0) + 1;
    return Object.entries(by).map(([allocation, n]) => [{ allocation }, n] as const);
  });
  metrics.gauge('fedlab_ma_slices', 'Slices in the books', [], () => [[{}, ledger.slices.size]]);
  metrics.gauge('fedlab_ma_holds', 'Allocations held but not provisioned', [], () => [[{}, ledger.holds.size]]);
  metrics.counterFrom('fedlab_ma_heartbeats_total', 'Heartbeats accepted from the nodes, unary or on a stream', [], () => [
    [{}, registry.heartbeats],
  ]);
}
