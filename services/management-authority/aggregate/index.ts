/** The site's Aggregate: the facade, what it is built from, and the sweeper's retention of Allocate request ids and tombstones. */
export { Aggregate } from './aggregate.js';
export type { AggregateDeps, AggregateSettings } from './aggregate-state.js';
export { SliceLedger } from './slice-ledger.js';
export { ALLOCATE_REQUEST_RETENTION_MS, ALLOCATE_REQUEST_SCAN_MS } from './sweepers.js';
export { TOMBSTONE_RETENTION_MS } from './tombstones.js';
