// Slivers' user id ranges against an owner's change of `container.uid_base` (root only: runc, user namespaces):
// a sliver made under one base keeps its range, and one made after the change is given a range that overlaps
// it nowhere, as the host's /proc/<pid>/uid_map of both keepers shows; a sliver whose stored range overlaps an
// older one's (what the old slot-number allocation could leave) is stopped and FAILED at start; a base whose
// ranges reach below 100000 (host accounts) stops start-up with the reason unless `container.allow_host_ids` says
// otherwise.
import { readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Store } from '../../services/core/store/store.js';
import { OperationalState } from '../../services/generated/fedlab/v1/common.js';
import type { SliverRecord } from '../../services/node-manager/records.js';
import { IDS_PER_SLIVER, type IdRange } from '../../services/node-manager/runtime/id-ranges.js';
import {
  canContain,
  cannotContainReason,
  collectExec,
  createSliver,
  runcList,
  startNodeManager,
  tempDir,
  type NmHarness,
} from '../helpers/node-manager.js';

if (!canContain) console.log(`skipping the sliver id range suite: ${cannotContainReason}`);

/** [first host uid, count] of a process's user namespace, read on the host. */
const uidMap = (pid: number): [number, number] => {
  const [inside, outside, count] = readFileSync(`/proc/${pid}/uid_map`, 'utf8').trim().split(/\s+/).map(Number);
  expect(inside).toBe(0);
  return [outside as number, count as number];
};

describe.skipIf(!canContain)('a change of container.uid_base never makes two slivers share ids', () => {
  const harnesses: NmHarness[] = [];
  const roots: string[] = [];
  afterAll(async () => {
    for (const h of harnesses.reverse()) await h.destroy().catch(() => undefined);
    for (const r of roots) rmSync(r, { recursive: true, force: true });
  });

  it("a sliver made after uid_base moved half a range down gets a range clear of the older sliver's", async () => {
    const base = 300_000;
    const h1 = await startNodeManager({ driver: 'container', config: { container: { uid_base: base, id_ranges: 8 } } });
    harnesses.push(h1);
    const old = await createSliver(h1, 'ids-old', { sliceUrn: 'urn:fedlab:plc.test:slice:ids-old' });
    const oldPid = h1.nm.slivers.get(old.urn)?.runtime?.pid as number;
    expect(uidMap(oldPid)).toEqual([base, IDS_PER_SLIVER]);
    await h1.stop();

    // Slot 0 and slot 1 under the new base both overlap the old sliver's ids: the first free range is slot 2's.
    const moved = base - IDS_PER_SLIVER / 2;
    const h2 = await startNodeManager({
      driver: 'container',
      dataDir: h1.dataDir,
      config: { container: { uid_base: moved, id_ranges: 8 } },
    });
    harnesses.push(h2);
    expect(h2.nm.slivers.get(old.urn)?.runtime?.pid).toBe(oldPid);
    const fresh = await createSliver(h2, 'ids-new', { sliceUrn: 'urn:fedlab:plc.test:slice:ids-new' });
    const newPid = h2.nm.slivers.get(fresh.urn)?.runtime?.pid as number;
    const [a, n] = [uidMap(oldPid), uidMap(newPid)];
    expect(a[0] + a[1] <= n[0] || n[0] + n[1] <= a[0], `old ${a.join('+')} new ${n.join('+')}`).toBe(true);
    expect(n).toEqual([moved + 2 * IDS_PER_SLIVER, IDS_PER_SLIVER]);
    // Files one writes are owned, on the host, by ids the other does not have.
    const run = (urn: string, script: string) =>
      collectExec(
        h2.client().exec({ sliverUrn: urn, argv: ['sh', '-c', script], env: {}, timeoutMs: 10_000 }, { chain: h2.parties.ownerChain }),
      );
    await run(fresh.urn, 'echo x > /root/f; chown 1000 /root/f');
    const { uid } = statSync(join(h2.dataDir, 'slivers', 'ids-new', 'data', 'root', 'f'));
    expect(uid).toBe(n[0] + 1000);
    expect(uid < a[0] || uid >= a[0] + a[1]).toBe(true);
  });

  it("a sliver whose stored range overlaps an older sliver's (left from before ranges were freed by overlap) is stopped and FAILED at start; the older runs on", async () => {
    const config = { container: { uid_base: 500_000, id_ranges: 8 } };
    const h1 = await startNodeManager({ driver: 'container', config });
    harnesses.push(h1);
    const older = await createSliver(h1, 'shr-old', { sliceUrn: 'urn:fedlab:plc.test:slice:shr-old' });
    const newer = await createSliver(h1, 'shr-new', { sliceUrn: 'urn:fedlab:plc.test:slice:shr-new' });
    const olderPid = h1.nm.slivers.get(older.urn)?.runtime?.pid as number;
    await h1.stop();
    // What the slot-number allocation could leave after a change of uid_base: the newer record holds ids of the older's range.
    const store = await Store.open(h1.dataDir);
    const slivers = store.table<SliverRecord>('slivers');
    const rec = (await slivers.get(newer.urn)) as SliverRecord;
    await slivers.put(newer.urn, { ...rec, ids: { ...(rec.ids as IdRange), hostId: 500_000 + 1000 } }, { sync: true });
    await store.close();

    const h2 = await startNodeManager({ driver: 'container', dataDir: h1.dataDir, config });
    harnesses.push(h2);
    const got = (await h2.client().getSliver({ sliverUrn: newer.urn }, { chain: h2.parties.ownerChain })).sliver;
    expect(got?.operationalState).toBe(OperationalState.OPERATIONAL_STATE_FAILED);
    expect(got?.error).toMatch(/overlap those of sliver shr-old .*delete it/);
    expect(runcList(h2.dataDir).map((c) => c.id)).toEqual(['shr-old']);
    expect(h2.nm.slivers.get(older.urn)?.runtime?.pid).toBe(olderPid);
  });

  it('a uid_base whose ranges reach below 100000 stops start-up with the reason, unless allow_host_ids is set', async () => {
    const root = tempDir();
    roots.push(root);
    const dataDir = join(root, 'data');
    await expect(
      startNodeManager({ driver: 'container', dataDir, config: { container: { uid_base: 20_000, id_ranges: 2 } } }),
    ).rejects.toThrow(/container\.uid_base 20000 .*below 100000.*allow_host_ids/);
    const h = await startNodeManager({
      driver: 'container',
      dataDir,
      config: { container: { uid_base: 20_000, id_ranges: 2, allow_host_ids: true } },
    });
    harnesses.push(h);
    expect(h.config.container.allow_host_ids).toBe(true);
  });
});
