/**
 * The management authority's periodic work: the health monitor (nodes DOWN
 * after three missed heartbeats), the coalesced write of node health, the
 * hold and expiry sweeper, and retries of intents a node did not finish.
 */
import type { Logger } from '../core/log.js';
import { Periodic } from '../core/periodic.js';
import type { Aggregate } from './aggregate/index.js';
import type { MaSettings } from './config.js';
import type { NodeRegistry } from './node-registry.js';

/** The periodic tasks (not started). */
export function backgroundTasks(registry: NodeRegistry, aggregate: Aggregate, intervals: MaSettings['tasks'], log: Logger): Periodic[] {
  return [
    new Periodic({ name: 'health-monitor', intervalMs: intervals.healthMonitorMs, log }, () => {
      registry.check();
    }),
    new Periodic({ name: 'health-flush', intervalMs: intervals.healthFlushMs, log }, async () => {
      await registry.flush();
    }),
    new Periodic({ name: 'hold-sweeper', intervalMs: intervals.sweepMs, log }, async () => {
      await aggregate.sweep();
    }),
    new Periodic({ name: 'intent-retry', intervalMs: intervals.intentRetryMs, log }, () => aggregate.retryIntents()),
  ];
}
