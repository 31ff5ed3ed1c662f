/**
 * A node's heartbeat rate, over both ways it beats (unary Heartbeat and
 * HeartbeatStream messages): one token bucket per enrolled node, so reopening
 * a stream, or switching to unary calls, does not buy a node a fresh allowance.
 * Generous (a node beats once an interval, seconds apart); a beat past it is
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

interface Bucket {
  tokens: number;
  at: number;
}

/** Per-node token buckets of heartbeats. */
export class HeartbeatRate {
  private readonly buckets = new WeakMap<object, Bucket>();

  constructor(
    private readonly limits: HeartbeatRateLimits = DEFAULT_HEARTBEAT_RATE,
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
