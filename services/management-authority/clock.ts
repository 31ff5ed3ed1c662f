/**
 * The management authority's clock is core's (services/core/clock.ts): this
 * re-export keeps the tests' and benchmarks' imports of it working; new code
 * imports core's.
 */
export { ManualClock, systemClock, type Clock } from '../core/clock.js';
