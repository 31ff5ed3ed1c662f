/**
 * A sliver's outcome in a call that touches many slivers, and how an
 * all-or-nothing call fails when some of them failed.
 */
import type { SliverRecord } from '../records.js';
import { errorFor } from './error-for.js';

/** A sliver's outcome in a fan-out call. */
export type Outcome = { readonly ok: true } | { readonly ok: false; readonly code: number; readonly reason: string };

/** The outcome of a sliver that is fine. */
export const OK: Outcome = { ok: true };

/** The outcome of a sliver that failed with a gRPC code and a reason. */
export const fail = (code: number, reason: string): Outcome => ({ ok: false, code, reason });

/** Throws, for an all-or-nothing call, the failures of every sliver that failed (nothing was changed). */
export function throwFailures(what: string, failures: readonly { sliver: SliverRecord; outcome: Outcome }[]): never {
  const bad = failures.filter((f) => !f.outcome.ok) as { sliver: SliverRecord; outcome: { ok: false; code: number; reason: string } }[];
  const first = bad[0] as (typeof bad)[number];
  const lines = bad.slice(0, 10).map((f) => `${f.sliver.urn} on ${f.sliver.nodeUrn}: ${f.outcome.reason}`);
  const more = bad.length > 10 ? `; and ${bad.length - 10} more` : '';
  throw errorFor(first.outcome.code, `${what} failed for ${bad.length} sliver(s), so nothing was done (ask with best_effort to keep what works): ${lines.join('; ')}${more}`);
}
