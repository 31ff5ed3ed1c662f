/**
 * Time as a service sees it. Every timer-driven decision (a node going DOWN, a
 * hold or a sliver expiring, a token expiring) reads a `Clock` passed in
 * through constructors, so tests and benchmarks move time instead of waiting.
 */

/** A source of the current time. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

/** The system clock. */
export const systemClock: Clock = { now: () => Date.now() };

/** A clock that moves only when told to (tests, benchmarks). */
export class ManualClock implements Clock {
  constructor(private t: number = Date.UTC(2026, 0, 1)) {}

  now(): number {
    return this.t;
  }

  /** Moves the clock forward by `ms`. */
  advance(ms: number): void {
    this.t += ms;
  }

  /** Sets the clock. */
  set(ms: number): void {
    this.t = ms;
  }
}
