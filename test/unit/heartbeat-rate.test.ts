// The MA's per-node heartbeat rate (a token bucket per node entry, on an injected clock) and the throttle of
// a node's warnings (at most one a minute, counting those held back).
import { describe, expect, it } from 'vitest';
import { HeartbeatRate, heartbeatRateFor } from '../../services/management-authority/heartbeat-rate.js';
import { NODE_WARNING_EVERY_MS, warningNow, type WarningThrottle } from '../../services/management-authority/node-warning-throttle.js';

describe('HeartbeatRate', () => {
  it('takes a burst, then the sustained rate, per node, and refuses past it with rule heartbeat_rate', () => {
    let now = 0;
    const rate = new HeartbeatRate({ perSecond: 5, burst: 20 }, () => now);
    const a = {};
    const b = {};
    for (let i = 0; i < 20; i++) rate.admit(a);
    expect(() => rate.admit(a)).toThrow(expect.objectContaining({ kind: 'resource_exhausted', details: { rule: 'heartbeat_rate' } }));
    rate.admit(b); // another node has its own bucket
    now += 200; // one token back at 5 a second
    rate.admit(a);
    expect(() => rate.admit(a)).toThrow(/more than 5 heartbeats a second/);
  });

  it('is 5 a second, or three beats per interval when more', () => {
    expect(heartbeatRateFor(10_000).perSecond).toBe(5);
    expect(heartbeatRateFor(200).perSecond).toBe(15);
    expect(heartbeatRateFor(200).burst).toBe(20);
  });
});

describe('warningNow', () => {
  it('logs the first, holds back the rest of the minute, then logs one with the count held back', () => {
    const t: WarningThrottle = { held: 0 };
    expect(warningNow(t, 1000)).toBe(0);
    expect(warningNow(t, 1001)).toBeUndefined();
    expect(warningNow(t, 1000 + NODE_WARNING_EVERY_MS - 1)).toBeUndefined();
    expect(warningNow(t, 1000 + NODE_WARNING_EVERY_MS)).toBe(2);
    expect(warningNow(t, 1000 + NODE_WARNING_EVERY_MS + 1)).toBeUndefined();
  });
});
