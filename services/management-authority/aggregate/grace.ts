/**
 * The restart grace as the Aggregate calls see it: right after the MA starts,
 * nodes it has not heard from yet are UNKNOWN (node-registry.ts), and a call
 * that needs one of them answers UNAVAILABLE with a retry hint — a passing
 * state — instead of a permanent-sounding RESOURCE_EXHAUSTED ("only 0 such
 * node(s) are UP") or "node is DOWN".
 */
import { UnavailableError } from '../../core/errors.js';
import type { AggregateState } from './aggregate-state.js';

/** Shortest retry hint (ms): a hint of 0 would invite a busy loop. */
const MIN_RETRY_MS = 100;

/**
 * Throws UNAVAILABLE with a retry hint (trailer `fedlab-retry-after-ms`) when any of `nodeUrns` is
 * UNKNOWN in the restart grace; `what` says what could not be done. Does nothing otherwise.
 */
export function duringGrace(state: AggregateState, nodeUrns: Iterable<string>, what: string): void {
  const { registry } = state.deps;
  const left = registry.graceLeftMs();
  if (left === 0) return;
  let unknown = 0;
  for (const urn of nodeUrns) if (registry.isUnknown(urn)) unknown++;
  if (unknown === 0) return;
  // A node that is up beats within an interval; the grace ends the wait in any case.
  const retryMs = Math.max(MIN_RETRY_MS, Math.min(left, registry.intervalMs));
  throw new UnavailableError(
    `${what}: this management authority has just restarted and has not heard from ${unknown} node(s) yet (it waits up to ${Math.ceil(left / 1000)} s more for their first heartbeats); nothing was changed — try again in ${retryMs} ms`,
    { retry_after_ms: retryMs, rule: 'restart-grace' },
  );
}
