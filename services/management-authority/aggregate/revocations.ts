/**
 * The relay of slice authorities' revocation lists to node managers: a node
 * trusts a slice authority's key for that authority's slices only, so its
 * signed list must reach every node holding those slices (UpdateRevocations),
 * each node that gets a new sliver of it, and each node that comes back UP
 * (its copies may have passed their next_update while it was away).
 * A large list travels as signed deltas (revocation-relay.ts keeps the chain
 * of them): a node sent one it cannot apply — its version is below the
 * delta's base — is sent the whole chain, in calls of bounded size.
 */
import type { CallContext } from '../../core/rpc/context.js';
import { DeadlineExceededError } from '../../core/errors.js';
import { groupForCalls } from '../../core/credentials/revocation-plan.js';
import type { NmClient } from '../node-clients.js';
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
  const taken = await deps.relay.accept(jws, sa.kid);
  const nodes = new Set<string>();
  for (const slice of ledger.slices.values()) {
    if (slice.sliceAuthorityKid !== sa.kid) continue;
    for (const s of ledger.sliversOf(slice.urn)) if (s.allocation === 'provisioned') nodes.add(s.nodeUrn);
  }
  let caughtUp = 0;
  const sent = await deps.nodes.fanOut(
    [...nodes],
    (n) => n,
    async (c, opts, nodeUrn) => {
      const r = await c.updateRevocations({ signedLists: [jws] }, opts);
      // Skipped: the node is below the delta's base (it missed one): the whole chain brings it up.
      let skipped = r.skipped;
      if (skipped > 0) {
        caughtUp++;
        skipped = await sendChain(c, opts, deps.relay.chainFor(sa.kid), ctx.deadline);
      }
      // Only what the node took is remembered: a node that skipped it (it holds no sliver of the authority
      // any more, or found the copy stale) is sent it again with its next sliver.
      if (skipped === 0) deps.relay.nodeTook(nodeUrn, sa.kid, jws.trim());
      return r;
    },
    { deadline: ctx.deadline, signal: ctx.signal },
  );
  const pending = sent.filter((r) => !r.ok);
  deps.log.info(
    { sa: sa.urn, version: taken.version, held: taken.held, newer: taken.newer, nodes: nodes.size, caughtUp, pending: pending.length },
    'revocation list relayed',
  );
  if (pending.length)
    deps.log.warn({ sa: sa.urn, nodes: pending.map((r) => r.nodeUrn).slice(0, 20) }, 'revocation list not delivered to some nodes yet');
  return { version: taken.held, nodesUpdated: sent.length - pending.length, nodesPending: pending.length };
}

/** What a call is left short of the caller's deadline (ms), as node-clients.ts leaves it. */
const DEADLINE_MARGIN_MS = 100;

/**
 * Sends a chain of signed messages to one node, in order, in calls of bounded size, all within the
 * caller's absolute `deadline` (ms since the epoch): each call gets what is left of it (at most the
 * per-call budget); none left, it stops with DEADLINE_EXCEEDED and the node counts as not reached.
 * Returns how many messages the node skipped (0: it took them all).
 */
async function sendChain(
  c: NmClient,
  opts: Parameters<NmClient['updateRevocations']>[1],
  chain: readonly string[],
  deadline = Infinity,
): Promise<number> {
  let skipped = 0;
  for (const signedLists of groupForCalls(chain)) {
    const left = deadline - Date.now() - DEADLINE_MARGIN_MS;
    if (left <= 0)
      throw new DeadlineExceededError("the call's deadline passed before the revocation chain was all sent; it is sent again later", {
        rule: 'deadline',
      });
    skipped += (await c.updateRevocations({ signedLists }, { ...opts, deadlineMs: Math.min(opts?.deadlineMs ?? left, left) })).skipped;
  }
  return skipped;
}

/** Gives nodes that just got slivers of a slice the revocation list of its slice authority, if it has one (best effort). */
export async function relayTo(state: AggregateState, slice: SliceRecord, nodeUrns: readonly string[], deadline: number): Promise<void> {
  const { deps } = state;
  const kid = slice.sliceAuthorityKid;
  const chain = deps.relay.chainFor(kid);
  const last = chain.at(-1);
  if (last === undefined || nodeUrns.length === 0) return;
  // A node that took the list as held now (an earlier sliver of the same authority) is not sent it again:
  // for a slice over many such nodes that was a second call to every node.
  const targets = [...new Set(nodeUrns)].filter((n) => !deps.relay.nodeTookUpTo(n, kid, last));
  if (targets.length === 0) return;
  // Nodes that answered but skipped part of the chain (they did not hold a delta's base): not recorded as holding it.
  const partial: string[] = [];
  const sent = await deps.nodes.fanOut(
    targets,
    (n) => n,
    async (c, opts, nodeUrn) => {
      if ((await sendChain(c, opts, chain, deadline)) === 0) deps.relay.nodeTook(nodeUrn, kid, last);
      else partial.push(nodeUrn);
    },
    { deadline },
  );
  const missed = sent.filter((r) => !r.ok);
  if (missed.length)
    deps.log.warn(
      { slice: slice.urn, nodes: missed.map((r) => r.nodeUrn).slice(0, 20), count: missed.length },
      "nodes did not take the slice authority's revocation list; it relays again with its next update",
    );
  if (partial.length)
    deps.log.warn(
      { slice: slice.urn, nodes: partial.slice(0, 20), count: partial.length },
      "nodes skipped part of the slice authority's revocation list (they lacked an earlier part); it relays again with its next update",
    );
}

/**
 * Gives a node that came (back) UP the chains held of the lists of the slice authorities with slivers
 * on it, in calls of bounded size (best effort: the authorities' next publications reach it anyway).
 */
export async function relayToNode(state: AggregateState, nodeUrn: string): Promise<void> {
  const { ledger, deps } = state;
  const kids = new Set<string>();
  for (const sliceUrn of ledger.use(nodeUrn).slices.keys()) {
    const slice = ledger.slices.get(sliceUrn);
    if (slice) kids.add(slice.sliceAuthorityKid);
  }
  // Whatever it took before it went away is not known to be current now.
  deps.relay.forgetNode(nodeUrn);
  const chains = [...kids].map((k) => ({ kid: k, chain: deps.relay.chainFor(k) })).filter((x) => x.chain.length > 0);
  const messages = chains.flatMap((x) => x.chain);
  if (!messages.length) return;
  const r = await deps.nodes.call(nodeUrn, (c, opts) => sendChain(c, opts, messages));
  if (!r.ok) deps.log.warn({ node: nodeUrn, reason: r.reason }, "a node back UP did not take the slice authorities' revocation lists");
  // All taken: each authority's chain is remembered as the node's (anything skipped: nothing is, it is sent again).
  else if (r.value === 0) for (const { kid, chain } of chains) deps.relay.nodeTook(nodeUrn, kid, chain.at(-1) as string);
}
