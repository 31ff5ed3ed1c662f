/**
 * A slice authority's revocation chain sent to one node stays within the caller's deadline (real MA and
 * node manager): the chain travels in several calls, each slow at the node; each call gets only what is
 * left of the absolute deadline, and none is begun once nothing is left, so relayTo (awaited inside
 * Provision) returns by the caller's deadline, the node counted as not reached (the relay sends again).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSignedRevocationUpdate, signRevocationDelta, updateSummary } from '../../services/core/credentials/revocation-delta.js';
import type { CallContext } from '../../services/core/rpc/context.js';
import type { AggregateState } from '../../services/management-authority/aggregate/aggregate-state.js';
import { relayTo } from '../../services/management-authority/aggregate/revocations.js';
import type { SliceRecord } from '../../services/management-authority/records.js';
import type { NodeManager } from '../../services/node-manager/node-manager.js';
import { disposeParties, enrolNode, startSite, type Site, type TestNode } from '../helpers/ma-harness.js';
import { generateKeyPair } from '../../services/core/identity/keys.js';

const CALL_MS = 1000;
const BUDGET_MS = 1500;

describe("a revocation chain to one node within the caller's deadline", () => {
  let site: Site;
  let node: TestNode;
  let calls = 0;

  beforeAll(async () => {
    site = await startSite();
    node = await enrolNode(site, { name: 'n1', driver: 'simulated' });
    const nm = node.nm as NodeManager;
    const take = nm.updateRevocations.bind(nm);
    nm.updateRevocations = async (ctx: CallContext, lists: readonly string[]) => {
      // Only the test's large deltas are slow (the MA sends its own small list too).
      if (lists.some((l) => l.length > 100_000)) {
        calls++;
        await new Promise((r) => setTimeout(r, CALL_MS));
      }
      return take(ctx, lists);
    };
  });

  afterAll(async () => {
    await node?.destroy();
    await site?.destroy();
    await disposeParties();
  });

  it('gives each call what is left and begins none past it', async () => {
    const state = (site.ma!.aggregate as unknown as { state: AggregateState }).state;
    const { privateKey } = generateKeyPair('p256');
    // Five large deltas: several calls (at most 512 KiB each), each slow at the node.
    const big = (i: number) => ({ jti: `${String(i).padStart(21, '0')}A`, reason: 'x'.repeat(100), time: 1_780_000_000 });
    let kid = '';
    for (let v = 0; v < 5; v++) {
      const entries = Array.from({ length: 1300 }, (_, i) => big(v * 10_000 + i));
      const m = signRevocationDelta(privateKey, { base: v * 1300, version: (v + 1) * 1300, entries });
      kid = updateSummary(parseSignedRevocationUpdate(m)).kid;
      await state.deps.relay.accept(m, kid);
    }
    expect(state.deps.relay.chainFor(kid)).toHaveLength(5);
    const slice = { urn: 'urn:fedlab:plc.test:slice:chain', sliceAuthorityKid: kid } as SliceRecord;
    const t0 = Date.now();
    await relayTo(state, slice, [node.urn], t0 + BUDGET_MS);
    const took = Date.now() - t0;
    // Without the bound: three calls of a second each, ~3 s.
    expect(calls).toBeLessThanOrEqual(2);
    expect(took).toBeLessThan(BUDGET_MS + 600);
  });
});
