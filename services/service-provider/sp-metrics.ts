/**
 * The service provider's gauges, read at each scrape: deployments by state,
 * and restarts of supervised services summed over each state's deployments
 * (no deployment name as a label: their number is not bounded by config).
 */
import type { ServiceMetrics } from '../core/metrics/service-metrics.js';
import type { DeploymentStateName } from './records.js';
import type { Deployments } from './deployments/deployments.js';

const STATES: readonly DeploymentStateName[] = [
  'pending',
  'creating_slice',
  'running_steps',
  'ready',
  'partial',
  'failed',
  'deleting',
  'deleted',
];

/** Registers the SP's gauges on `metrics`. */
export function registerSpMetrics(metrics: ServiceMetrics, deployments: Deployments): void {
  const read = (): { count: Map<string, number>; restarts: Map<string, number> } => {
    const count = new Map<string, number>();
    const restarts = new Map<string, number>();
    for (const d of deployments.records()) {
      count.set(d.state, (count.get(d.state) ?? 0) + 1);
      restarts.set(d.state, (restarts.get(d.state) ?? 0) + d.targets.reduce((n, t) => n + t.restarts, 0));
    }
    return { count, restarts };
  };
  metrics.gauge('fedlab_sp_deployments', 'Deployments by state', ['state'], () => {
    const { count } = read();
    return STATES.map((state) => [{ state }, count.get(state) ?? 0] as const);
  });
  metrics.gauge(
    'fedlab_sp_service_restarts',
    'Restarts of supervised services, summed over the deployments of each state',
    ['state'],
    () => {
      const { restarts } = read();
      return STATES.map((state) => [{ state }, restarts.get(state) ?? 0] as const);
    },
  );
}
