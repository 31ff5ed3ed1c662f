// A planetlab-style site end to end: a real MA over mTLS with three real node managers (container driver as
// root, else the process driver, saying so) enrolled with one-time tokens; nodes go UP on heartbeats and DOWN
// within three missed ones; a slice is allocated, provisioned, started, inspected, renewed and deleted, with
// the node managers showing exactly what the MA says.
import { status as Status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AllocationState, NodeHealth, OperationalState } from '../../services/generated/fedlab/v1/common.js';
import { OperationalAction } from '../../services/generated/fedlab/v1/aggregate.js';
import { containerSupport } from '../../services/node-manager/drivers/select.js';
import { enrolNode, startSite, until, type Site, type TestNode, disposeParties } from '../helpers/ma-harness.js';

const support = containerSupport();
const driver = support.ok ? 'container' : 'process';
if (!support.ok)
  console.log(`ma-planetlab: container driver unavailable (${support.reason}); using the process driver, which does not isolate`);

let site: Site;
let nodes: TestNode[] = [];
let chain: string[];
const slice = 'urn:fedlab:plc.test:slice:exp1';
const sp = 'urn:fedlab:plc.test:sp:acme';

beforeAll(async () => {
  site = await startSite({ style: 'planetlab' });
  nodes = [];
  for (const name of ['n1', 'n2', 'n3']) nodes.push(await enrolNode(site, { name, driver }));
  chain = await site.saChain({ ttlS: 300 * 86_400 });
});

afterAll(async () => {
  for (const n of nodes) await n.destroy();
  await site?.destroy();
  await disposeParties();
});

describe('planetlab site with real node managers', () => {
  it('sees three enrolled nodes UP, and one stopped node DOWN within three heartbeats', async () => {
    await until(
      async () => (await site.maClient().listNodes({ pageSize: 0, pageToken: '', health: NodeHealth.NODE_HEALTH_UP })).nodes.length === 3,
      10_000,
      'three nodes UP',
    );
    const n3 = nodes[2] as TestNode;
    await n3.stop();
    const stoppedAt = Date.now();
    await until(
      async () => (await site.maClient().getNode({ nodeUrn: n3.urn })).node?.health === NodeHealth.NODE_HEALTH_DOWN,
      5_000,
      'n3 DOWN',
    );
    const took = Date.now() - stoppedAt;
    // Three intervals of 200 ms plus the monitor's tick; generous bound for a loaded machine.
    expect(took).toBeLessThan(3 * 200 + 1500);
    const down = await site.maClient().getNode({ nodeUrn: n3.urn });
    expect(down.node?.missedHeartbeats).toBeGreaterThanOrEqual(3);
    await n3.start();
    await until(
      async () => (await site.maClient().getNode({ nodeUrn: n3.urn })).node?.health === NodeHealth.NODE_HEALTH_UP,
      5_000,
      'n3 UP again',
    );
  });

  it('allocates, provisions, starts, reports, renews and deletes a slice across the nodes', async () => {
    const agg = site.aggClient();
    const version = await agg.getVersion({});
    expect(version.apiVersion).toBe(3);
    expect(version.requestDocumentFormats).toEqual([]);
    const alloc = await agg.allocate(
      {
        users: [],
        requestId: 'a1',
        sliceUrn: slice,
        providerUrn: sp,
        request: {
          nodes: { nodeUrns: nodes.map((n) => n.urn), count: 0, clientIds: [] },
          links: [],
          exclusive: false,
          requestDocument: '',
          requestDocumentFormat: '',
        },
      },
      { chain },
    );
    expect(alloc.slivers).toHaveLength(3);
    for (const s of alloc.slivers) {
      expect(s.allocationState).toBe(AllocationState.ALLOCATION_STATE_ALLOCATED);
      expect(s.operationalState).toBe(OperationalState.OPERATIONAL_STATE_PENDING);
    }
    // Nothing on the nodes yet: a hold lives in the MA's books only.
    for (const n of nodes)
      expect((await n.client().listSlivers({ pageSize: 0, pageToken: '', sliceUrn: '' }, { chain: n.ownerChain })).slivers).toHaveLength(0);
    // Idempotent on request_id.
    const again = await agg.allocate(
      {
        users: [],
        requestId: 'a1',
        sliceUrn: slice,
        providerUrn: sp,
        request: {
          nodes: { nodeUrns: nodes.map((n) => n.urn), count: 0, clientIds: [] },
          links: [],
          exclusive: false,
          requestDocument: '',
          requestDocumentFormat: '',
        },
      },
      { chain },
    );
    expect(again.slivers.map((s) => s.urn)).toEqual(alloc.slivers.map((s) => s.urn));

    const prov = await agg.provision({ urns: [slice], bestEffort: false, start: false }, { chain });
    expect(prov.results.every((r) => r.status?.code === 0)).toBe(true);
    for (const r of prov.results) {
      expect(r.sliver?.allocationState).toBe(AllocationState.ALLOCATION_STATE_PROVISIONED);
      expect(r.sliver?.operationalState).toBe(OperationalState.OPERATIONAL_STATE_NOTREADY);
    }
    const started = await agg.performOperationalAction(
      { users: [], urns: [slice], action: OperationalAction.OPERATIONAL_ACTION_START, bestEffort: false },
      { chain },
    );
    expect(started.results.every((r) => r.status?.code === 0)).toBe(true);
    await until(
      async () =>
        (await agg.status({ urns: [slice] }, { chain })).slivers.every(
          (s) => s.operationalState === OperationalState.OPERATIONAL_STATE_READY,
        ),
      15_000,
      'every sliver READY',
    );
    // What the MA says is what the nodes have, and the nodes learned the slice authority.
    for (const n of nodes) {
      const on = (await n.client().listSlivers({ pageSize: 0, pageToken: '', sliceUrn: '' }, { chain: n.ownerChain })).slivers;
      expect(on).toHaveLength(1);
      expect(on[0]?.sliceUrn).toBe(slice);
      expect(on[0]?.sliceAuthorityUrn).toBe(site.parties.sa.urn);
    }
    const described = await agg.describe({ urns: [slice] }, { chain });
    expect(described.slivers).toHaveLength(3);

    const before = (await agg.status({ urns: [slice] }, { chain })).slivers[0]?.expiresAt?.getTime() ?? 0;
    const later = new Date(Date.now() + 14 * 86_400_000);
    const renewed = await agg.renew({ urns: [slice], expiresAt: later, bestEffort: false }, { chain });
    expect(renewed.results.every((r) => r.status?.code === 0)).toBe(true);
    expect(renewed.results[0]?.sliver?.expiresAt?.getTime()).toBeGreaterThan(before);
    // Never past the site maximum (8 weeks).
    const tooLate = await agg
      .renew({ urns: [slice], expiresAt: new Date(Date.now() + 70 * 86_400_000), bestEffort: false }, { chain })
      .catch((e: unknown) => e);
    expect((tooLate as { code: number }).code).toBe(Status.PERMISSION_DENIED);
    expect((tooLate as Error).message).toMatch(/site maximum/);

    const del = await agg.delete({ urns: [slice], bestEffort: false }, { chain });
    expect(del.results.every((r) => r.status?.code === 0)).toBe(true);
    for (const n of nodes)
      expect((await n.client().listSlivers({ pageSize: 0, pageToken: '', sliceUrn: '' }, { chain: n.ownerChain })).slivers).toHaveLength(0);
    const gone = await agg.status({ urns: [slice] }, { chain }).catch((e: unknown) => e);
    expect((gone as { code: number }).code).toBe(Status.NOT_FOUND);
    // Deleting what is gone succeeds (by sliver URN).
    const delAgain = await agg.delete({ urns: alloc.slivers.map((s) => s.urn), bestEffort: false }, { chain });
    expect(delAgain.results.map((r) => [r.status?.code, r.sliver?.allocationState])).toEqual(
      alloc.slivers.map(() => [0, AllocationState.ALLOCATION_STATE_UNALLOCATED]),
    );
  });
});
