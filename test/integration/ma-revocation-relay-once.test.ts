/**
 * A slice authority's revocation list goes to a node once per version, not with every sliver (real MA and
 * node manager): relayTo (after every Provision) skips a node that took the list as held now, sends again
 * when a newer message is held, when the last send failed, and after the node came back UP (relayToNode).
 */
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSignedRevocationUpdate, signRevocationDelta, updateSummary } from '../../services/core/credentials/revocation-delta.js';
import type { CallContext } from '../../services/core/rpc/context.js';
import type { AggregateState } from '../../services/management-authority/aggregate/aggregate-state.js';
import { relayTo, relayToNode } from '../../services/management-authority/aggregate/revocations.js';
import type { SliceRecord } from '../../services/management-authority/records.js';
import type { NodeManager } from '../../services/node-manager/node-manager.js';
import { disposeParties, enrolNode, startSite, type Site, type TestNode } from '../helpers/ma-harness.js';

describe('the relay of a slice authority’s revocation list to a node', () => {
  let site: Site;
  let node: TestNode;
  /** The test authority's messages the node was handed (every call, whether it answered OK). */
  const received: string[] = [];
  let failNext = false;
  let marker = '';

  beforeAll(async () => {
    site = await startSite();
    node = await enrolNode(site, { name: 'n1', driver: 'simulated' });
    const nm = node.nm as NodeManager;
    const take = nm.updateRevocations.bind(nm);
    nm.updateRevocations = async (ctx: CallContext, lists: readonly string[]) => {
      const ours = lists.filter((l) => marker !== '' && updateSummary(parseSignedRevocationUpdate(l)).kid === marker);
      received.push(...ours);
      if (ours.length && failNext) {
        failNext = false;
        throw new Error('the node fails this once');
      }
      return take(ctx, lists);
    };
  });

  afterAll(async () => {
    await node?.destroy();
    await site?.destroy();
    await disposeParties();
  });

  it('sends each version once, again after a failure, and again after the node came back UP', async () => {
    const state = (site.ma!.aggregate as unknown as { state: AggregateState }).state;
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const entry = (i: number) => ({ jti: `${String(i).padStart(21, '0')}A`, reason: 'left', time: 1_780_000_000 });
    const v1 = signRevocationDelta(privateKey, { base: 0, version: 1, entries: [entry(1)] });
    const kid = updateSummary(parseSignedRevocationUpdate(v1)).kid;
    marker = kid;
    await state.deps.relay.accept(v1, kid);
    const slice = { urn: 'urn:fedlab:plc.test:slice:once', sliceAuthorityKid: kid } as SliceRecord;
    const relay = () => relayTo(state, slice, [node.urn, node.urn], Date.now() + 5000);

    await relay();
    expect(received).toEqual([v1]);
    // A second sliver of the same authority on the node: nothing to send.
    await relay();
    await relay();
    expect(received).toHaveLength(1);

    // A newer message held: the node gets the chain up to it.
    const v2 = signRevocationDelta(privateKey, { base: 1, version: 2, entries: [entry(2)] });
    await state.deps.relay.accept(v2, kid);
    failNext = true;
    await relay();
    expect(received.slice(1)).toEqual([v1, v2]);
    // That call failed: the next relay sends again, and once it went through, not after.
    await relay();
    expect(received.slice(3)).toEqual([v1, v2]);
    await relay();
    expect(received).toHaveLength(5);

    // The node came back UP (with slivers of this authority): it is sent its chain whatever it took before.
    state.ledger.use(node.urn).slices.set(slice.urn, 1);
    state.ledger.slices.set(slice.urn, slice);
    try {
      await relayToNode(state, node.urn);
      expect(received.slice(5)).toEqual([v1, v2]);
      await relay();
      expect(received).toHaveLength(7);
    } finally {
      state.ledger.use(node.urn).slices.delete(slice.urn);
      state.ledger.slices.delete(slice.urn);
    }
  });
});
