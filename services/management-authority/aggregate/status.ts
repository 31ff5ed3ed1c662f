/**
 * What the site reports of a slice: Status (the slivers' states, refreshed
 * from their node managers) and Describe (the manifest, from the ledger).
 */
import { status as Status } from '@grpc/grpc-js';
import type { CallContext } from '../../core/rpc/context.js';
import type { AggregateDescribeResponse, AggregateStatusResponse } from '../../generated/fedlab/v1/aggregate.js';
import type { SliverRecord } from '../records.js';
import type { AggregateState } from './aggregate-state.js';
import { requireOwnSlice, resolveTargets } from './call-targets.js';
import { linksToWire, manifestDocument, operationalFromWire } from './to-wire.js';

/** Status: the slivers' states, refreshed from their node managers (each call with a deadline). */
export async function status(state: AggregateState, ctx: CallContext, urns: readonly string[]): Promise<AggregateStatusResponse> {
  const { ledger, deps } = state;
  const access = deps.access.chain(ctx, 'sliver.read');
  const { slice, slivers } = resolveTargets(ledger, urns);
  requireOwnSlice(access, slice, slivers);
  const live = slivers.filter((s) => s.allocation === 'provisioned' && !s.phase);
  const got = await deps.nodes.fanOut(
    live,
    (s) => s.nodeUrn,
    (c, opts, s) => c.getSliver({ sliverUrn: s.urn }, opts),
    { deadline: ctx.deadline, signal: ctx.signal },
  );
  const errors = new Map<string, string>();
  // What the nodes said is recorded when the store can; a store that refuses writes does not stop the answer.
  await state
    .mutate((tx, t) => {
      for (const [i, r] of got.entries()) {
        const s = live[i] as SliverRecord;
        const cur = ledger.slivers.get(s.urn);
        if (!cur || cur.phase || cur.allocation !== 'provisioned') continue;
        if (!r.ok) {
          if (r.code === Status.NOT_FOUND) {
            tx.putSliver({
              ...cur,
              operational: 'failed',
              error: `the node no longer has this sliver (${r.reason}); delete it and allocate again`,
              updatedAt: t,
            });
          } else errors.set(s.urn, `last known state; ${r.reason}`);
          continue;
        }
        const nm = r.value.sliver;
        const operational = operationalFromWire(nm?.operationalState, cur.operational);
        const expiresAt = nm?.expiresAt?.getTime() ?? cur.expiresAt;
        const error = nm?.error ?? '';
        // A node that reports a login name (after a restart of the node, say) is believed.
        const sshUsername = nm?.ssh?.username || cur.sshUsername;
        if (operational !== cur.operational || expiresAt !== cur.expiresAt || error !== cur.error || sshUsername !== cur.sshUsername)
          tx.putSliver({ ...cur, operational, expiresAt, error, updatedAt: t, ...(sshUsername ? { sshUsername } : {}) });
      }
    })
    .catch((err: unknown) => deps.log.warn({ slice: slice.urn, err: (err as Error).message }, "slivers' states not recorded"));
  const after = ledger.slices.get(slice.urn) ?? slice;
  return {
    sliceUrn: slice.urn,
    slivers: slivers.map((s) => {
      const w = state.toWire(ledger.slivers.get(s.urn) ?? s);
      const e = errors.get(s.urn);
      return e ? { ...w, error: w.error ? `${w.error}; ${e}` : e } : w;
    }),
    swappedOut: after.swappedOut,
    shutDown: after.shutDown !== undefined,
  };
}

/** Describe: the manifest of a slice at this site (from the MA's ledger). */
export function describe(state: AggregateState, ctx: CallContext, urns: readonly string[]): AggregateDescribeResponse {
  const { deps } = state;
  const access = deps.access.chain(ctx, 'sliver.read');
  const { slice, slivers } = resolveTargets(state.ledger, urns);
  requireOwnSlice(access, slice, slivers);
  return {
    sliceUrn: slice.urn,
    slivers: slivers.map((s) => state.toWire(s)),
    links: linksToWire(slice.links),
    manifestDocument: slice.documentFormat ? manifestDocument(slice, slivers, deps.maUrn) : '',
    swappedOut: slice.swappedOut,
    shutDown: slice.shutDown !== undefined,
  };
}
