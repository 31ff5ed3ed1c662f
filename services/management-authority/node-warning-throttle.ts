/**
 * At most one warning of a kind per node per minute: a node's bad report
 * (an SSH endpoint or underlay address that does not check out) is worth a log
 * line, but a node alternating two bad values on every heartbeat must not
 * write one line per message. The line that is logged says how many were held
 * back since the last.
 */

/** How often a node's warning of one kind is logged at most (ms, MA clock). */
export const NODE_WARNING_EVERY_MS = 60_000;

/** When a node's warning of one kind was last logged, and how many were held back since. */
export interface WarningThrottle {
  at?: number;
  held: number;
}

/**
 * Whether to log a warning now: returns how many were held back since the last line (to log with
 * this one), or undefined when this one is held back too.
 */
export function warningNow(throttle: WarningThrottle, now: number): number | undefined {
  if (throttle.at !== undefined && now - throttle.at < NODE_WARNING_EVERY_MS && now >= throttle.at) {
    throttle.held++;
    return undefined;
  }
  const held = throttle.held;
  throttle.at = now;
  throttle.held = 0;
  return held;
}
