// A protogeni-style site: the two-phase Allocate → Provision → start flow driven by a request document, with
// the GENI allocation and operational states reported exactly (on the wire and in the manifest), an exclusive
// node refusing a second slice, and an allocation hold that expires when nobody provisions it.
import { status as Status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AllocationState, OperationalState, type ResourceRequest } from '../../services/generated/fedlab/v1/common.js';
import { OperationalAction } from '../../services/generated/fedlab/v1/aggregate.js';
import { containerSupport } from '../../services/node-manager/drivers/select.js';
import { downAndUp, enrolNode, siteParties, startSite, until, type Site, type TestNode, disposeParties } from '../helpers/ma-harness.js';

const support = containerSupport();
const driver = support.ok ? 'container' : 'process';
if (!support.ok)
  console.log(`ma-protogeni: container driver unavailable (${support.reason}); using the process driver, which does not isolate`);

const HOLD_S = 2;
const sp = 'urn:fedlab:pg.test:sp:acme';
let site: Site;
let nodes: TestNode[] = [];
let chain: string[];

function docRequest(doc: unknown): ResourceRequest {
  return { links: [], exclusive: false, requestDocument: JSON.stringify(doc), requestDocumentFormat: 'fedlab-rspec+json' };
}

beforeAll(async () => {
  site = await startSite({ style: 'protogeni', parties: await siteParties('pg.test'), config: { allocation_hold_s: HOLD_S } });
  nodes = [];
  for (const name of ['p1', 'p2', 'p3']) nodes.push(await enrolNode(site, { name, driver }));
  chain = await site.saChain({ ttlS: 300 * 86_400 });
  await until(async () => (site.ma?.registry.all() ?? []).filter((n) => n.up).length === 3, 10_000, 'three nodes UP');
});

afterAll(async () => {
  for (const n of nodes) await n.destroy();
  await site?.destroy();
  await disposeParties();
});

describe('protogeni site with real node managers', () => {
  it('sees a stopped node DOWN within three heartbeats, and UP again', async () => {
    expect(await downAndUp(site, nodes[2]!)).toBeLessThan(3 * 200 + 1500);
  });

  it('runs Allocate → Provision → start from a request document with exact GENI states', async () => {
    const agg = site.aggClient();
    const slice = 'urn:fedlab:pg.test:slice:geni';
    const version = await agg.getVersion({});
    expect(version.requestDocumentFormats).toEqual(['fedlab-rspec+json']);
    expect(version.allocationHoldS).toBe(HOLD_S);
    const doc = {
      type: 'request',
      nodes: [
        { client_id: 'web', component_id: nodes[0]!.urn, exclusive: true, resources: { cpu_millis: 200, mem_mb: 128 } },
        { client_id: 'db', resources: { mem_mb: 96 } },
      ],
    };
    const alloc = await agg.allocate({ users: [], requestId: 'g1', sliceUrn: slice, providerUrn: sp, request: docRequest(doc) }, { chain });
    expect(alloc.slivers.map((s) => [s.clientId, s.allocationState, s.operationalState])).toEqual([
      ['web', AllocationState.ALLOCATION_STATE_ALLOCATED, OperationalState.OPERATIONAL_STATE_PENDING],
      ['db', AllocationState.ALLOCATION_STATE_ALLOCATED, OperationalState.OPERATIONAL_STATE_PENDING],
    ]);
    const web = alloc.slivers.find((s) => s.clientId === 'web')!;
    expect(web.nodeUrn).toBe(nodes[0]!.urn);
    expect(web.exclusive).toBe(true);
    expect(web.resources).toMatchObject({ cpuMillis: 200, memMb: 128 });
    const held = JSON.parse(alloc.manifestDocument) as {
      nodes: { client_id: string; allocation_state: string; operational_state: string; sliver_id: string }[];
    };
    expect(held.nodes.map((n) => [n.client_id, n.allocation_state, n.operational_state])).toEqual([
      ['web', 'geni_allocated', 'geni_pending_allocation'],
      ['db', 'geni_allocated', 'geni_pending_allocation'],
    ]);
    // The hold ends soon: it is reported as the sliver's expiry.
    expect(web.expiresAt!.getTime()).toBeLessThanOrEqual(Date.now() + HOLD_S * 1000 + 100);

    // An exclusive node refuses another slice.
    const refused = await agg
      .allocate(
        {
          users: [],
          requestId: 'g2',
          sliceUrn: 'urn:fedlab:pg.test:slice:other',
          providerUrn: sp,
          request: docRequest({ nodes: [{ client_id: 'x', component_id: nodes[0]!.urn }] }),
        },
        { chain },
      )
      .catch((e: unknown) => e);
    expect((refused as { code: number }).code).toBe(Status.RESOURCE_EXHAUSTED);

    const prov = await agg.provision({ urns: [slice], bestEffort: false, start: false }, { chain });
    expect(prov.results.map((r) => [r.sliver?.allocationState, r.sliver?.operationalState])).toEqual([
      [AllocationState.ALLOCATION_STATE_PROVISIONED, OperationalState.OPERATIONAL_STATE_NOTREADY],
      [AllocationState.ALLOCATION_STATE_PROVISIONED, OperationalState.OPERATIONAL_STATE_NOTREADY],
    ]);
    const provisioned = JSON.parse(prov.manifestDocument) as { nodes: { allocation_state: string; operational_state: string }[] };
    expect(provisioned.nodes.every((n) => n.allocation_state === 'geni_provisioned' && n.operational_state === 'geni_notready')).toBe(true);
    // Provisioned slivers outlive the hold.
    await new Promise((r) => setTimeout(r, HOLD_S * 1000 + 300));
    await agg.performOperationalAction(
      { users: [], urns: [slice], action: OperationalAction.OPERATIONAL_ACTION_START, bestEffort: false },
      { chain },
    );
    await until(
      async () =>
        (await agg.status({ urns: [slice] }, { chain })).slivers.every(
          (s) => s.operationalState === OperationalState.OPERATIONAL_STATE_READY,
        ),
      15_000,
      'READY',
    );
    const described = await agg.describe({ urns: [slice] }, { chain });
    const manifest = JSON.parse(described.manifestDocument) as {
      nodes: { allocation_state: string; operational_state: string; sliver_id: string }[];
    };
    expect(manifest.nodes.every((n) => n.allocation_state === 'geni_provisioned' && n.operational_state === 'geni_ready')).toBe(true);
    const stopped = await agg.performOperationalAction(
      { users: [], urns: [slice], action: OperationalAction.OPERATIONAL_ACTION_STOP, bestEffort: false },
      { chain },
    );
    expect(stopped.results.every((r) => r.sliver?.operationalState === OperationalState.OPERATIONAL_STATE_STOPPED)).toBe(true);
    const renewed = await agg.renew({ urns: [slice], expiresAt: new Date(Date.now() + 2 * 86_400_000), bestEffort: false }, { chain });
    expect(renewed.results.every((r) => r.status?.code === 0 && r.sliver!.expiresAt!.getTime() > Date.now() + 86_400_000)).toBe(true);
    // Swap-out is an emulab action.
    const swap = await agg
      .performOperationalAction(
        { users: [], urns: [slice], action: OperationalAction.OPERATIONAL_ACTION_SWAP_OUT, bestEffort: false },
        { chain },
      )
      .catch((e: unknown) => e);
    expect((swap as { code: number }).code).toBe(Status.FAILED_PRECONDITION);
    await agg.delete({ urns: [slice], bestEffort: false }, { chain });
  });

  it('lets a hold expire when nobody provisions it, releasing its capacity', async () => {
    const agg = site.aggClient();
    const slice = 'urn:fedlab:pg.test:slice:late';
    const alloc = await agg.allocate(
      {
        users: [],
        requestId: 'late-1',
        sliceUrn: slice,
        providerUrn: sp,
        request: docRequest({ nodes: [{ client_id: 'a', component_id: nodes[1]!.urn, exclusive: true }] }),
      },
      { chain },
    );
    expect(alloc.slivers[0]?.allocationState).toBe(AllocationState.ALLOCATION_STATE_ALLOCATED);
    await until(() => site.ma!.aggregate.stats().holds === 0, (HOLD_S + 3) * 1000, 'the hold to expire');
    const late = await agg
      .provision({ urns: [alloc.slivers[0]!.urn], bestEffort: false, start: false }, { chain })
      .catch((e: unknown) => e);
    expect((late as { code: number }).code).toBe(Status.NOT_FOUND);
    expect((late as Error).message).toMatch(/expired/);
    // The node is free again: another slice may have it whole.
    const next = await agg.allocate(
      {
        users: [],
        requestId: 'late-2',
        sliceUrn: 'urn:fedlab:pg.test:slice:next',
        providerUrn: sp,
        request: docRequest({ nodes: [{ client_id: 'a', component_id: nodes[1]!.urn, exclusive: true }] }),
      },
      { chain },
    );
    expect(next.slivers).toHaveLength(1);
    await agg.delete({ urns: ['urn:fedlab:pg.test:slice:next'], bestEffort: false }, { chain });
    // Never allocated: a Provision of it is NOT_FOUND, and a malformed document is INVALID_ARGUMENT; nothing held.
    const never = await agg
      .provision({ urns: ['urn:fedlab:pg.test:slice:never'], bestEffort: false, start: false }, { chain })
      .catch((e: unknown) => e);
    expect((never as { code: number }).code).toBe(Status.NOT_FOUND);
    const badDoc = await agg
      .allocate(
        {
          users: [],
          requestId: 'late-3',
          sliceUrn: slice,
          providerUrn: sp,
          request: docRequest({ nodes: [{ client_id: 'a', colour: 'red' }] }),
        },
        { chain },
      )
      .catch((e: unknown) => e);
    expect((badDoc as { code: number }).code).toBe(Status.INVALID_ARGUMENT);
    expect(site.ma!.aggregate.stats()).toMatchObject({ slivers: 0, holds: 0 });
  });
});
