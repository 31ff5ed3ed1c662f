// A management authority (`fedlab serve ma`) whose data directory is on a small tmpfs that fills up: every
// call that must write answers UNAVAILABLE naming the store and changes nothing (no hold, no sliver on a
// node, no delete); reads go on; once space is freed the MA writes again by itself; after a kill -9 and a
// restart every acknowledged slice and sliver is in its books and on its nodes, and no refused one is.
// Root only (it mounts the tmpfs).
import { status as Status } from '@grpc/grpc-js';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AllocationState, NodeHealth } from '../../services/generated/fedlab/v1/common.js';
import { disposeParties, enrolNode, siteParties, startSite, until, type Site, type TestNode } from '../helpers/ma-harness.js';
import { mountTmpfs, tmpfsUnavailable, type Tmpfs } from '../helpers/tmpfs.js';

const skip = tmpfsUnavailable();
if (skip) console.warn(`skipping the MA disk-full test: ${skip}`);

const SP = 'urn:fedlab:full.test:sp:acme';
let fs: Tmpfs | undefined;
let site: Site;
const nodes: TestNode[] = [];
let chain: string[];

/** What became of a slice's calls: acknowledged, refused by the store, or not tried. */
interface Fate {
  allocated: 'ok' | 'refused';
  provisioned?: 'ok' | 'refused';
  deleted?: 'ok' | 'refused';
}
const fates = new Map<string, Fate>();

const sliceUrn = (name: string): string => `urn:fedlab:full.test:slice:${name}`;

/** 'ok', or 'refused' when the store refused the write (UNAVAILABLE naming the store, "nothing was changed"); anything else fails the test. */
async function outcome(call: Promise<unknown>): Promise<'ok' | 'refused'> {
  try {
    await call;
    return 'ok';
  } catch (err) {
    const e = err as { code?: number; details?: string; metadata?: { get(k: string): unknown[] } };
    expect(e.code, String(e.details)).toBe(Status.UNAVAILABLE);
    expect(e.details).toMatch(/the store at .* refuses writes since .*(disk full|I\/O error).*nothing was changed/);
    expect(String(e.metadata?.get('fedlab-store')[0])).toBe(site.dataDir);
    return 'refused';
  }
}

/** Allocate and, if that was acknowledged, Provision (started) one sliver of a new slice. */
async function make(name: string): Promise<Fate> {
  const agg = site.aggClient();
  const urn = sliceUrn(name);
  const fate: Fate = {
    allocated: await outcome(
      agg.allocate(
        {
          users: [],
          requestId: `${name}-a`,
          sliceUrn: urn,
          providerUrn: SP,
          request: {
            nodes: { nodeUrns: [], count: 1, clientIds: [] },
            resources: { cpuMillis: 100, memMb: 64, diskMb: 64, pids: 64, bandwidthKbps: 0 },
            links: [],
            exclusive: false,
            requestDocument: '',
            requestDocumentFormat: '',
          },
        },
        { chain },
      ),
    ),
  };
  if (fate.allocated === 'ok') fate.provisioned = await outcome(agg.provision({ urns: [urn], bestEffort: false, start: true }, { chain }));
  fates.set(name, fate);
  return fate;
}

/** Deletes a slice made before; records whether the store took it. */
async function remove(name: string): Promise<'ok' | 'refused'> {
  const fate = fates.get(name) as Fate;
  fate.deleted = await outcome(site.aggClient().delete({ urns: [sliceUrn(name)], bestEffort: false }, { chain }));
  return fate.deleted;
}

/** Every sliver the node managers hold. */
function onNodes(): string[] {
  return nodes.flatMap((n) => (n.nm?.slivers.list() ?? []).map((s) => s.urn)).sort();
}

/** The slivers the MA's books hold of a slice, by allocation state; undefined when it has no such slice. */
async function booked(name: string): Promise<{ urn: string; state: AllocationState }[] | undefined> {
  try {
    const d = await site.aggClient().describe({ urns: [sliceUrn(name)] }, { chain });
    return d.slivers.map((s) => ({ urn: s.urn, state: s.allocationState }));
  } catch (err) {
    expect((err as { code?: number }).code).toBe(Status.NOT_FOUND);
    return undefined;
  }
}

beforeAll(async () => {
  if (skip) return;
  fs = mountTmpfs(4096);
  site = await startSite({
    style: 'planetlab',
    parties: await siteParties('full.test'),
    child: true,
    dataDir: join(fs.dir, 'data'),
  });
  for (const name of ['f1', 'f2']) nodes.push(await enrolNode(site, { name, driver: 'simulated' }));
  await until(
    async () =>
      (await site.maClient().listNodes({ pageSize: 0, pageToken: '', health: NodeHealth.NODE_HEALTH_UP })).nodes.length === nodes.length,
    15_000,
    'every node UP',
  );
  chain = await site.saChain({ ttlS: 30 * 86_400 });
}, 90_000);

afterAll(async () => {
  for (const n of nodes) await n.destroy();
  await site?.destroy();
  fs?.unmount();
  await disposeParties();
});

describe.skipIf(skip !== undefined)('management authority on a full disk', () => {
  it('refuses what it cannot write, changes nothing, resumes by itself, and a restart finds exactly what it acknowledged', async () => {
    for (const name of ['before-1', 'before-2', 'before-3']) expect(await make(name)).toEqual({ allocated: 'ok', provisioned: 'ok' });

    // Full: the heartbeats' health flush or one of these calls meets the full disk first; from then on
    // every call that must write is refused.
    (fs as Tmpfs).fill(0);
    let n = 0;
    await until(async () => (await make(`full-${n++}`)).allocated === 'refused', 20_000, 'an Allocate refused by the store');
    for (let i = 0; i < 3; i++) expect(await make(`refused-${i}`)).toEqual({ allocated: 'refused' });
    expect(await remove('before-1')).toBe('refused');
    // Nothing of it happened: no hold, no slice, the deleted slice still provisioned; reads go on.
    for (let i = 0; i < 3; i++) expect(await booked(`refused-${i}`)).toBeUndefined();
    expect((await booked('before-1'))?.map((s) => s.state)).toEqual([AllocationState.ALLOCATION_STATE_PROVISIONED]);

    // Freed: the MA writes again on its own.
    (fs as Tmpfs).free();
    let m = 0;
    await until(async () => (await make(`after-${m++}`)).allocated === 'ok', 30_000, 'an Allocate taken again');
    for (const name of ['after-x', 'after-y']) expect(await make(name)).toEqual({ allocated: 'ok', provisioned: 'ok' });
    expect(await remove('before-2')).toBe('ok');

    // kill -9 and a restart on the same data.
    await site.kill9();
    await site.restart();
    const provisioned: string[] = [];
    for (const [name, fate] of fates) {
      const slivers = await booked(name);
      if (fate.allocated === 'refused' || fate.deleted === 'ok') {
        expect(slivers, `${name} (${JSON.stringify(fate)})`).toBeUndefined();
        continue;
      }
      expect(slivers, `${name} (${JSON.stringify(fate)})`).toHaveLength(1);
      const want = fate.provisioned === 'ok' ? AllocationState.ALLOCATION_STATE_PROVISIONED : AllocationState.ALLOCATION_STATE_ALLOCATED;
      expect(slivers?.[0]?.state, name).toBe(want);
      if (want === AllocationState.ALLOCATION_STATE_PROVISIONED) provisioned.push(slivers?.[0]?.urn as string);
    }
    // The nodes hold exactly the acknowledged, provisioned slivers: nothing refused made it there, nothing acknowledged is lost.
    await until(() => onNodes().join() === provisioned.sort().join(), 10_000, 'the nodes to hold exactly what the MA acknowledged');
    expect([...fates.values()].filter((f) => f.allocated === 'refused').length).toBeGreaterThanOrEqual(4);
  }, 150_000);
});
