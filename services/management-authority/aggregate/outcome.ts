/**
 * A sliver's outcome in a call that touches many slivers, and how an
 * all-or-nothing call fails when some of them failed.
 */
import { errorForCode, type Failure, type Result } from '../../core/rpc/outcome.js';
import type { SliverRecord } from '../records.js';

/** A sliver's outcome in a fan-out call (the core's per-part result, without a value). */
export type Outcome = Result;

/** Throws, for an all-or-nothing call, the failures of every sliver that failed (nothing was changed). */
export function throwFailures(what: string, failures: readonly { sliver: SliverRecord; outcome: Outcome }[]): never {
  const bad = failures.filter((f) => !f.outcome.ok) as { sliver: SliverRecord; outcome: Failure }[];
  const first = bad[0] as (typeof bad)[number];
  const lines = bad.slice(0, 10).map((f) => `${f.sliver.urn} on ${f.sliver.nodeUrn}: ${f.outcome.reason}`);
  const more = bad.length > 10 ? `; and ${bad.length - 10} more` : '';
  throw errorForCode(
    first.outcome.code,
    `${what} failed for ${bad.length} sliver(s), so nothing was done (ask with best_effort to keep what works): ${lines.join('; ')}${more}`,
  );
}
