/**
 * A slice authority's revocation list goes to a node once per version, not with every sliver (real MA and
 * node manager): relayTo (after every Provision) skips a node that took the list as held now, and sends
 * again when a newer message is held, when the last send failed, when the node skipped it (it held no
 * sliver of the authority then), and after the node came back UP (relayToNode).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseSignedRevocationUpdate, signRevocationDelta, updateSummary } from '../../services/core/credentials/revocation-delta.js';
import type { CallContext } from '../../services/core/rpc/context.js';
import type { AggregateState } from '../../services/management-authority/aggregate/aggregate-state.js';
import { relayTo, relayToNode } from '../../services/management-authority/aggregate/revocations.js';
import type { SliceRecord } from '../../services/management-authority/records.js';
import type { NodeManager } from '../../services/node-manager/node-manager.js';
import { disposeParties, enrolNode, startSite, type Site, type TestNode } from '../helpers/ma-harness.js';
import { createRequest } from '../helpers/node-manager.js';

describe('the relay of a slice authority’s revocation list to a node', () => {
  let site: Site;
  let node: TestNode;
  /** The site's slice authority's messages the node was handed (every call), and what it answered. */
  const received: string[] = [];
  const answers: { installed: number; current: number; skipped: number }[] = [];
  let failNext = false;
  let kid = '';

  beforeAll(async () => {
    site = await startSite();
    node = await enrolNode(site, { name: 'n1', driver: 'simulated' });
    kid = site.parties.sa.kid;
    const nm = node.nm as NodeManager;
    const take = nm.updateRevocations.bind(nm);
    nm.updateRevocations = async (ctx: CallContext, lists: readonly string[]) => {
      const ours = lists.filter((l) => updateSummary(parseSignedRevocationUpdate(l)).kid === kid);
      received.push(...ours);
      if (ours.length && failNext) {
        failNext = false;
        throw new Error('the node fails this once');
      }
      const r = await take(ctx, lists);
      if (ours.length) answers.push(r);
      return r;
    };
  });

  afterAll(async () => {
    await node?.destroy();
    await site?.destroy();
    await disposeParties();
  });

  it('sends each version once to a node that took it, again after a failure, a skip, and the node coming back UP', async () => {
    const state = (site.ma!.aggregate as unknown as { state: AggregateState }).state;
    const sa = site.parties.sa;
    const entry = (i: number) => ({ jti: `${String(i).padStart(21, '0')}A`, reason: 'left', time: 1_780_000_000 });
    const v1 = signRevocationDelta(sa.privateKey, { base: 0, version: 1, entries: [entry(1)] });
    await state.deps.relay.accept(v1, kid);
    const slice = { urn: 'urn:fedlab:plc.test:slice:once', sliceAuthorityKid: kid } as SliceRecord;
    const relay = () => relayTo(state, slice, [node.urn, node.urn], Date.now() + 5000);

    // What the MA warns about, by message: the operator's only sign of a node left short of a list.
    const warn = vi.spyOn(state.deps.log, 'warn');
    const warned = (text: string) =>
      warn.mock.calls
        .filter(([, msg]) => typeof msg === 'string' && msg.includes(text))
        .map(([fields]) => fields as Record<string, unknown>);

    // No sliver of this authority on the node yet: it skips the list, and it is not remembered as taken.
    await relay();
    await relay();
    expect(received).toEqual([v1, v1]);
    expect(answers.map((a) => a.skipped)).toEqual([1, 1]);
    expect(warned('skipped part of')).toEqual([
      { slice: slice.urn, nodes: [node.urn], count: 1 },
      { slice: slice.urn, nodes: [node.urn], count: 1 },
    ]);

    // A sliver of the authority on the node (as a Provision makes): it takes the list, once.
    await node.client().createSliver(
      createRequest('once-1', {
        sliceUrn: slice.urn,
        sliceAuthorityUrn: sa.urn,
        sliceAuthorityJwk: JSON.stringify(sa.jwk),
        providerUrn: site.parties.sp.urn,
      }),
      { chain: node.ownerChain },
    );
    await relay();
    expect(received).toHaveLength(3);
    expect(answers.at(-1)).toMatchObject({ installed: 1, skipped: 0 });
    expect(warned('skipped part of')).toHaveLength(2);
    // Another sliver of the same authority: nothing to send.
    await relay();
    await relay();
    expect(received).toHaveLength(3);

    // A newer message held: the node gets the chain up to it; a failed send is sent again, then not.
    const v2 = signRevocationDelta(sa.privateKey, { base: 1, version: 2, entries: [entry(2)] });
    await state.deps.relay.accept(v2, kid);
    failNext = true;
    await relay();
    expect(received.slice(3)).toEqual([v1, v2]);
    expect(warned('did not take')).toEqual([{ slice: slice.urn, nodes: [node.urn], count: 1 }]);
    await relay();
    expect(received.slice(5)).toEqual([v1, v2]);
    await relay();
    expect(received).toHaveLength(7);

    // The node came back UP (with a sliver of this authority): it is sent its chain whatever it took before.
    state.ledger.use(node.urn).slices.set(slice.urn, 1);
    state.ledger.slices.set(slice.urn, slice);
    try {
      await relayToNode(state, node.urn);
      expect(received.slice(7)).toEqual([v1, v2]);
      await relay();
      expect(received).toHaveLength(9);
      // A node that took everything is never warned about.
      expect(warned('skipped part of')).toHaveLength(2);
      expect(warned('did not take')).toHaveLength(1);
    } finally {
      warn.mockRestore();
      state.ledger.use(node.urn).slices.delete(slice.urn);
      state.ledger.slices.delete(slice.urn);
    }
  });
});
