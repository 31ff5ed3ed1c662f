// kill -9 of a management authority process in the middle of a Provision and of a Delete, then a restart on
// the same data: the intent written before the node calls is undone (provision) or finished (delete), so no
// node keeps a sliver the MA does not know of, holds stay as they were, and the slice can be provisioned again.
// The node managers are real (in this process) with a driver that takes its time, so the kill lands mid-work.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AllocationState, NodeHealth } from '../../services/generated/fedlab/v1/common.js';
import { SimulatedDriver } from '../../services/node-manager/drivers/simulated.js';
import type { DriverSliver } from '../../services/node-manager/drivers/driver.js';
import { enrolNode, siteParties, startSite, until, type Site, type TestNode, disposeParties } from '../helpers/ma-harness.js';

/** The simulated driver, slowed down where the test wants the MA killed. */
class SlowDriver extends SimulatedDriver {
  static provisionMs = 0;
  static destroyMs = 0;
  override async provision(s: DriverSliver): Promise<void> {
    await new Promise((r) => setTimeout(r, SlowDriver.provisionMs));
    await super.provision(s);
  }
  override async destroy(name: string): Promise<void> {
    await new Promise((r) => setTimeout(r, SlowDriver.destroyMs));
    await super.destroy(name);
  }
}

const sp = 'urn:fedlab:crash.test:sp:acme';
let site: Site;
let nodes: TestNode[] = [];
let chain: string[];

/** Slivers the node managers hold, by node. */
async function onNodes(): Promise<string[]> {
  const out: string[] = [];
  for (const n of nodes) for (const s of n.nm?.slivers.list() ?? []) out.push(s.urn);
  return out.sort();
}

async function allUp(): Promise<void> {
  await until(
    async () =>
      (await site.maClient().listNodes({ pageSize: 0, pageToken: '', health: NodeHealth.NODE_HEALTH_UP })).nodes.length === nodes.length,
    15_000,
    'every node UP',
  );
}

beforeAll(async () => {
  site = await startSite({ style: 'planetlab', parties: await siteParties('crash.test'), child: true });
  nodes = [];
  for (const name of ['c1', 'c2', 'c3']) nodes.push(await enrolNode(site, { name, driver: 'simulated', driverObject: new SlowDriver() }));
  chain = await site.saChain({ ttlS: 300 * 86_400 });
  await allUp();
}, 90_000);

afterAll(async () => {
  for (const n of nodes) await n.destroy();
  await site?.destroy();
  await disposeParties();
});

describe('management authority killed with SIGKILL', () => {
  it('undoes a Provision interrupted mid-way: no orphan sliver, the holds intact', async () => {
    const slice = 'urn:fedlab:crash.test:slice:p';
    const agg = site.aggClient();
    const alloc = await agg.allocate(
      {
        users: [],
        requestId: 'p1',
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
    const mine = alloc.slivers.map((s) => s.urn).sort();
    SlowDriver.provisionMs = 2500;
    const pending = agg
      .provision({ urns: [slice], bestEffort: false, start: true }, { chain, deadlineMs: 20_000 })
      .catch((e: unknown) => e);
    // Kill once every node manager has admitted its sliver and is busy making it.
    await until(async () => (await onNodes()).length === 3, 10_000, 'the node managers to start provisioning');
    await site.kill9();
    expect(await pending).toBeInstanceOf(Error);
    SlowDriver.provisionMs = 0;
    await site.restart();
    // Recovery ran before the restarted MA took its first call.
    expect(await onNodes()).toEqual([]);
    await allUp();
    const st = await agg.status({ urns: [slice] }, { chain });
    expect(st.slivers.map((s) => s.urn).sort()).toEqual(mine);
    expect(st.slivers.every((s) => s.allocationState === AllocationState.ALLOCATION_STATE_ALLOCATED)).toBe(true);
    // The same slice provisions now, and the nodes hold exactly what the MA knows.
    const prov = await agg.provision({ urns: [slice], bestEffort: false, start: true }, { chain });
    expect(prov.results.every((r) => r.status?.code === 0)).toBe(true);
    expect(await onNodes()).toEqual(mine);
  }, 90_000);

  it('finishes a Delete interrupted mid-way', async () => {
    const slice = 'urn:fedlab:crash.test:slice:p';
    const agg = site.aggClient();
    SlowDriver.destroyMs = 2500;
    const pending = agg.delete({ urns: [slice], bestEffort: false }, { chain, deadlineMs: 20_000 }).catch((e: unknown) => e);
    await until(
      async () => nodes.every((n) => (n.nm?.slivers.list() ?? []).some((s) => s.deleting)),
      10_000,
      'the node managers to start deleting',
    );
    await site.kill9();
    expect(await pending).toBeInstanceOf(Error);
    SlowDriver.destroyMs = 0;
    await site.restart();
    await until(async () => (await onNodes()).length === 0, 10_000, 'the nodes to be empty');
    const gone = await agg.status({ urns: [slice] }, { chain }).catch((e: unknown) => e);
    expect((gone as { code: number }).code).toBe(5);
  }, 90_000);
});
