// kill -9 of a slice authority process (`fedlab serve sa`) in the middle of CreateSlice and of DeleteSlice,
// then a restart on the same data, against real MAs of two domains and real node managers whose (simulated)
// driver takes its time, so the kill lands while the sites are working. After the restart the intents are
// settled: an interrupted create is rolled back at every site, an interrupted delete is finished; no node
// keeps a sliver of a slice the SA does not hold live, and no live slice points at slivers that are gone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimulatedDriver } from '../../services/node-manager/drivers/simulated.js';
import type { DriverSliver } from '../../services/node-manager/drivers/driver.js';
import { AllocationState } from '../../services/generated/fedlab/v1/common.js';
import { SliceState } from '../../services/generated/fedlab/v1/slice_authority.js';
import { disposeParties, until } from '../helpers/ma-harness.js';
import { siteRequest } from '../helpers/federation-harness.js';
import { startFederation, type Federation } from '../helpers/sa-harness.js';

/** The simulated driver, slowed down so that a kill lands mid-work. */
class SlowDriver extends SimulatedDriver {
  override async provision(s: DriverSliver): Promise<void> {
    await new Promise((r) => setTimeout(r, 500));
    await super.provision(s);
  }
  override async destroy(name: string): Promise<void> {
    await new Promise((r) => setTimeout(r, 400));
    await super.destroy(name);
  }
}

let fed: Federation;
const LIVE = [
  SliceState.SLICE_STATE_READY,
  SliceState.SLICE_STATE_PARTIAL,
  SliceState.SLICE_STATE_PENDING,
  SliceState.SLICE_STATE_DELETING,
];

beforeAll(async () => {
  fed = await startFederation({
    sites: [
      { domain: 'plc.test', style: 'planetlab', nodes: 2, driver: 'simulated', driverObject: () => new SlowDriver() },
      { domain: 'pg.test', style: 'protogeni', nodes: 2, driver: 'simulated', driverObject: () => new SlowDriver() },
    ],
    child: true,
    saConfig: { limits: { site_deadline_ms: 10_000 } },
  });
}, 120_000);

afterAll(async () => {
  await fed?.destroy();
  await disposeParties();
});

/**
 * The invariant: every sliver on a node belongs to a slice the SA holds live, and every live slice's
 * provisioned slivers are on their nodes. Returns what breaks it (empty when it holds).
 */
async function broken(): Promise<string[]> {
  const sa = fed.saClient();
  const problems: string[] = [];
  const onNodes = await fed.sliversOnNodes();
  const slices = new Map<string, { state: number; slivers: string[] }>();
  for (const state of [0, SliceState.SLICE_STATE_FAILED, SliceState.SLICE_STATE_DELETED]) {
    for (const s of (await sa.listSlices({ pageSize: 1000, pageToken: '', state })).slices) {
      slices.set(s.urn, {
        state: s.state,
        slivers: s.slivers.filter((x) => x.allocationState === AllocationState.ALLOCATION_STATE_PROVISIONED).map((x) => x.urn),
      });
    }
  }
  for (const [node, slice, sliver] of onNodes) {
    const rec = slices.get(slice);
    if (!rec || !LIVE.includes(rec.state))
      problems.push(`orphan sliver ${sliver} on ${node} (slice ${slice} is ${rec ? SliceState[rec.state] : 'unknown'})`);
  }
  const present = new Set(onNodes.map(([, , s]) => s));
  for (const [urn, rec] of slices) {
    if (rec.state !== SliceState.SLICE_STATE_READY && rec.state !== SliceState.SLICE_STATE_PARTIAL) continue;
    for (const s of rec.slivers) if (!present.has(s)) problems.push(`slice ${urn} points at sliver ${s}, which no node has`);
  }
  return problems;
}

async function settled(what: string): Promise<void> {
  let last: string[] = [];
  await until(
    async () => {
      last = await broken();
      return (
        last.length === 0 &&
        [...(await fed.saClient().listSlices({ pageSize: 1000, pageToken: '', state: 0 })).slices].every(
          (s) => s.state !== SliceState.SLICE_STATE_PENDING && s.state !== SliceState.SLICE_STATE_DELETING,
        )
      );
    },
    30_000,
    `${what}: ${last.join('; ')}`,
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}\n${last.join('\n')}`);
  });
}

// Each restart starts a Node process; generous on a loaded two-core machine.
describe('slice authority killed with SIGKILL', { timeout: 180_000 }, () => {
  it('mid-CreateSlice: the restarted SA rolls the slice back at every site (or keeps it whole if it was done)', async () => {
    const outcomes: string[] = [];
    for (const [i, delay] of [150, 600, 1100].entries()) {
      const sa = fed.saClient();
      const res = await sa.createSlice({
        users: [],
        requestId: `crash-${i}`,
        name: `crash-${i}`,
        description: '',
        mode: 0,
        sites: [siteRequest('plc.test', { count: 2 }), siteRequest('pg.test', { count: 2 })],
        start: true,
        wait: false,
      });
      expect(res.slice?.state).toBe(SliceState.SLICE_STATE_PENDING);
      await new Promise((r) => setTimeout(r, delay));
      await fed.kill9Sa();
      await fed.startSa();
      await settled(`after a kill ${delay} ms into CreateSlice`);
      const after = (await fed.saClient().getSlice({ sliceUrn: res.slice!.urn })).slice!;
      expect([SliceState.SLICE_STATE_FAILED, SliceState.SLICE_STATE_READY]).toContain(after.state);
      const on = (await fed.sliversOnNodes()).filter(([, s]) => s === after.urn);
      outcomes.push(`${SliceState[after.state]} ${after.sites[0]?.status?.reason ?? ''}`);
      if (after.state === SliceState.SLICE_STATE_FAILED) {
        expect(on).toEqual([]);
        expect(after.sites.every((s) => s.status?.code !== 0)).toBe(true);
      } else {
        expect(on).toHaveLength(4);
      }
    }
    // The earliest kill lands while the sites are still provisioning (each sliver takes 500 ms): a rollback.
    expect(outcomes[0]).toMatch(/FAILED.*restarted/);
  });

  it('mid-DeleteSlice: the restarted SA finishes the delete at every site', async () => {
    const sa = fed.saClient();
    const res = await sa.createSlice({
      users: [],
      requestId: 'del-1',
      name: 'del-1',
      description: '',
      mode: 0,
      sites: [siteRequest('plc.test', { count: 2 }), siteRequest('pg.test', { count: 1 })],
      start: false,
      wait: true,
    });
    expect(res.slice?.state).toBe(SliceState.SLICE_STATE_READY);
    expect((await fed.sliversOnNodes()).filter(([, s]) => s === res.slice?.urn)).toHaveLength(3);
    const pending = sa.deleteSlice({ sliceUrn: res.slice!.urn }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 150));
    await fed.kill9Sa();
    await pending;
    await fed.startSa();
    await settled('after a kill mid-DeleteSlice');
    const after = (await fed.saClient().getSlice({ sliceUrn: res.slice!.urn })).slice!;
    expect(after.state).toBe(SliceState.SLICE_STATE_DELETED);
    expect((await fed.sliversOnNodes()).filter(([, s]) => s === after.urn)).toEqual([]);
  });
});
