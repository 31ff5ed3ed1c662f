/**
 * The relay of slice authorities' revocation lists to node managers: a node
 * trusts a slice authority's key for that authority's slices only, so its
 * signed list must reach every node holding those slices (UpdateRevocations),
 * each node that gets a new sliver of it, and each node that comes back UP
 * (its copies may have passed their next_update while it was away).
 */
import type { CallContext } from '../../core/rpc/context.js';
import type { SliceRecord } from '../records.js';
import type { AggregateState } from './aggregate-state.js';

/**
 * UpdateRevocations: a slice authority this site delegated to hands over its own signed revocation
 * list; it is kept (when newer) and sent to every node holding slivers of that authority's slices,
 * each call with a deadline. Nodes that could not be reached are counted as pending: the slice
 * authority calls again until none is (and nodes that get a new sliver of it get the list then).
 */
export async function updateRevocations(
  state: AggregateState,
  ctx: CallContext,
  jws: string,
): Promise<{ version: number; nodesUpdated: number; nodesPending: number }> {
  const { ledger, deps } = state;
  const access = deps.access.chain(ctx, 'sliver.read');
  const sa = access.sliceAuthority;
  const { list, newer } = await deps.relay.accept(jws, sa.kid);
  const nodes = new Set<string>();
  for (const slice of ledger.slices.values()) {
    if (slice.sliceAuthorityKid !== sa.kid) continue;
    for (const s of ledger.sliversOf(slice.urn)) if (s.allocation === 'provisioned') nodes.add(s.nodeUrn);
  }
  const sent = await deps.nodes.fanOut(
    [...nodes],
    (n) => n,
    (c, opts) => c.updateRevocations({ signedLists: [jws] }, opts),
    { deadline: ctx.deadline, signal: ctx.signal },
  );
  const pending = sent.filter((r) => !r.ok);
  deps.log.info({ sa: sa.urn, version: list.version, newer, nodes: nodes.size, pending: pending.length }, 'revocation list relayed');
  if (pending.length)
    deps.log.warn({ sa: sa.urn, nodes: pending.map((r) => r.nodeUrn).slice(0, 20) }, 'revocation list not delivered to some nodes yet');
  return { version: list.version, nodesUpdated: sent.length - pending.length, nodesPending: pending.length };
}

/** Gives nodes that just got slivers of a slice the revocation list of its slice authority, if it has one (best effort). */
export async function relayTo(state: AggregateState, slice: SliceRecord, nodeUrns: readonly string[], deadline: number): Promise<void> {
  const { deps } = state;
  const jws = deps.relay.signedFor(slice.sliceAuthorityKid);
  if (!jws || nodeUrns.length === 0) return;
  const sent = await deps.nodes.fanOut(
    [...new Set(nodeUrns)],
    (n) => n,
    (c, opts) => c.updateRevocations({ signedLists: [jws] }, opts),
    { deadline },
  );
  const missed = sent.filter((r) => !r.ok);
  if (missed.length)
    deps.log.warn(
      { slice: slice.urn, nodes: missed.map((r) => r.nodeUrn).slice(0, 20) },
      "nodes did not take the slice authority's revocation list; it relays again with its next update",
    );
}

/** Most lists one NodeManager.UpdateRevocations call carries. */
const MAX_LISTS_PER_CALL = 64;

/**
 * Gives a node that came (back) UP the freshest copies held of the lists of the slice authorities
 * with slivers on it, in one call (best effort: the authorities' next publications reach it anyway).
 */
export async function relayToNode(state: AggregateState, nodeUrn: string): Promise<void> {
  const { ledger, deps } = state;
  const kids = new Set<string>();
  for (const sliceUrn of ledger.use(nodeUrn).slices.keys()) {
    const slice = ledger.slices.get(sliceUrn);
    if (slice) kids.add(slice.sliceAuthorityKid);
  }
  const lists = [...kids].map((k) => deps.relay.signedFor(k)).filter((j): j is string => j !== undefined);
  for (let i = 0; i < lists.length; i += MAX_LISTS_PER_CALL) {
    const signedLists = lists.slice(i, i + MAX_LISTS_PER_CALL);
    const r = await deps.nodes.call(nodeUrn, (c, opts) => c.updateRevocations({ signedLists }, opts));
    if (!r.ok) {
      deps.log.warn({ node: nodeUrn, reason: r.reason }, "a node back UP did not take the slice authorities' revocation lists");
      return;
    }
  }
}
