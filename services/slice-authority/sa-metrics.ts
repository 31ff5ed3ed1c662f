/**
 * The slice authority's metrics: slices by state (read at each scrape) and
 * every call to a site by site, method and code, with its latency. Sites are
 * the configured ones, so the label set is bounded by config.
 */
import type { ServiceMetrics } from '../core/metrics/service-metrics.js';
import type { StateName } from './records.js';
import type { SliceBook } from './slices/slice-book.js';

const STATES: readonly StateName[] = ['pending', 'ready', 'partial', 'failed', 'deleting', 'deleted', 'expired'];

/** Registers the SA's gauges; returns the observer its site clients report to. */
export function registerSaMetrics(
  metrics: ServiceMetrics,
  book: () => SliceBook | undefined,
): (site: string, method: string, code: string, seconds: number) => void {
  metrics.gauge('fedlab_sa_slices', 'Slices by state', ['state'], () => {
    const by = book()?.countByState() ?? new Map<string, number>();
    return STATES.map((state) => [{ state }, by.get(state) ?? 0] as const);
  });
  const calls = metrics.counter('fedlab_sa_site_calls_total', 'Calls to sites by site, method and status code', ['site', 'method', 'code']);
  const seconds = metrics.histogram('fedlab_sa_site_call_duration_seconds', 'Latency of calls to sites by site', ['site']);
  return (site, method, code, s) => {
    calls.inc({ site, method: method.split('/').pop() ?? method, code });
    seconds.observe({ site }, s);
  };
}
