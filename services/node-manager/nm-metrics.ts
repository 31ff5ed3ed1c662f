/**
 * The node manager's gauges, read at each scrape: slivers by operational
 * state, committed resources against capacity, and each sliver's cgroup use
 * (CPU seconds, memory, processes, OOM kills) as the driver measures it. The
 * sliver label is bounded by the owner's policy (the slivers a node may hold).
 */
import type { ServiceMetrics } from '../core/metrics/service-metrics.js';
import type { SliverMeasure } from './drivers/driver.js';
import type { Operational } from './records.js';
import { SliverManager } from './sliver-manager.js';

const STATES: readonly Operational[] = ['pending', 'notready', 'configuring', 'ready', 'stopping', 'stopped', 'failed'];

/** Registers the node manager's gauges on `metrics`. */
export function registerNmMetrics(metrics: ServiceMetrics, slivers: SliverManager): void {
  metrics.gauge('fedlab_nm_slivers', 'Slivers on this node by operational state', ['state'], () => {
    const by = new Map<string, number>();
    for (const s of slivers.list()) by.set(s.operational, (by.get(s.operational) ?? 0) + 1);
    return STATES.map((state) => [{ state }, by.get(state) ?? 0] as const);
  });
  metrics.gauge('fedlab_nm_capacity', "The node's capacity for slivers by resource", ['resource'], () => {
    const c = slivers.capacity;
    return [
      [{ resource: 'cpu_millis' }, c.cpuMillis],
      [{ resource: 'mem_mb' }, c.memMb],
      [{ resource: 'slivers' }, c.slivers],
    ] as const;
  });
  metrics.gauge('fedlab_nm_committed', 'Resources granted to slivers by resource', ['resource'], () => {
    const c = slivers.committed;
    return [
      [{ resource: 'cpu_millis' }, c.cpuMillis],
      [{ resource: 'mem_mb' }, c.memMb],
      [{ resource: 'slivers' }, c.slivers],
    ] as const;
  });
  // One measurement per sliver per scrape, shared by the four gauges below.
  let measuring: Promise<Map<string, SliverMeasure | undefined>> | undefined;
  const measureAll = (): Promise<Map<string, SliverMeasure | undefined>> =>
    (measuring ??= (async () => {
      const out = new Map<string, SliverMeasure | undefined>();
      for (const s of slivers.list()) {
        if (s.operational !== 'ready') continue;
        out.set(s.name, await slivers.driver.measure(SliverManager.driverSliver(s)).catch(() => undefined));
      }
      setImmediate(() => (measuring = undefined));
      return out;
    })());
  const perSliver = (name: string, help: string, read: (m: SliverMeasure) => number | undefined): void =>
    metrics.gauge(name, help, ['sliver'], async () => {
      const out: (readonly [{ sliver: string }, number])[] = [];
      for (const [sliver, m] of await measureAll()) {
        const v = m ? read(m) : undefined;
        if (v !== undefined) out.push([{ sliver }, v]);
      }
      return out;
    });
  perSliver('fedlab_nm_sliver_cpu_seconds', 'CPU time a running sliver has used (from its cgroup)', (m) =>
    m.cpuUsageNs === undefined ? undefined : m.cpuUsageNs / 1e9,
  );
  perSliver('fedlab_nm_sliver_memory_bytes', 'Memory a running sliver uses (from its cgroup)', (m) => m.memBytes);
  perSliver('fedlab_nm_sliver_pids', 'Processes in a running sliver (from its cgroup)', (m) => m.pids);
  perSliver('fedlab_nm_sliver_oom_kills', 'Processes the kernel killed in a sliver for exceeding its memory limit', (m) => m.oomKills);
}
