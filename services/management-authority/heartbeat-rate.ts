/**
 * A node's heartbeat rate, over both ways it beats (unary Heartbeat and
 * HeartbeatStream messages): one token bucket per enrolled node, so reopening
 * a stream, or switching to unary calls, does not buy a node a fresh allowance.
 * Generous (a node beats once an interval, seconds apart: {@link heartbeatRateFor}); a beat past it is
 * refused with RESOURCE_EXHAUSTED (rule `heartbeat_rate`) and not recorded.
 *
 * Memory stays bounded by the fleet: the bucket is touched only after the
 * registry has checked the caller is an enrolled node with its enrolled key,
 * and it lives beside that node's entry (weakly), so it goes when the node does.
 * Measured on a monotonic clock, not the MA's clock: a rate is wall time passing.
 */
import { performance } from 'node:perf_hooks';
import { ResourceExhaustedError } from '../core/errors.js';

/** Sustained beats per second one node may send, and how many at once above that. */
export interface HeartbeatRateLimits {
  readonly perSecond: number;
  readonly burst: number;
}

/** The default: five a second sustained, twenty at once. */
export const DEFAULT_HEARTBEAT_RATE: HeartbeatRateLimits = Object.freeze({ perSecond: 5, burst: 20 });

/**
 * The rate for a site whose nodes beat every `intervalMs`: the default, or three beats per interval
 * when that is more (a site configured with sub-second intervals, as test sites are, must not have
 * its nodes' ordinary beats refused; 200 ms gives 15 a second).
 */
export function heartbeatRateFor(intervalMs: number): HeartbeatRateLimits {
  const perInterval = intervalMs > 0 ? (3 * 1000) / intervalMs : DEFAULT_HEARTBEAT_RATE.perSecond;
  return Object.freeze({ ...DEFAULT_HEARTBEAT_RATE, perSecond: Math.max(DEFAULT_HEARTBEAT_RATE.perSecond, perInterval) });
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Per-node token buckets of heartbeats. */
export class HeartbeatRate {
  private readonly buckets = new WeakMap<object, Bucket>();

  constructor(
    readonly limits: HeartbeatRateLimits = DEFAULT_HEARTBEAT_RATE,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Takes one beat of `node` (an enrolled node's entry); throws RESOURCE_EXHAUSTED past the rate. */
  readonly admit = (node: object): void => {
    const now = this.now();
    let b = this.buckets.get(node);
    if (!b) {
      b = { tokens: this.limits.burst, at: now };
      this.buckets.set(node, b);
    }
    b.tokens = Math.min(this.limits.burst, b.tokens + ((now - b.at) * this.limits.perSecond) / 1000);
    b.at = now;
    if (b.tokens < 1) {
      throw new ResourceExhaustedError(
        `more than ${this.limits.perSecond} heartbeats a second from this node (burst ${this.limits.burst}, streams and unary calls together); beat at the interval the answers give`,
        { rule: 'heartbeat_rate' },
      );
    }
    b.tokens -= 1;
  };
}
