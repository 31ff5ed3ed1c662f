// A node manager leaves no cgroup directory behind: runc makes a sliver's cgroup in every hierarchy
// (cpuset, devices, freezer, blkio, name=systemd, the hybrid unified one, …), and a stop with no
// sliver left removes the instance's directories in all of them, while a stop with a live sliver
// keeps what that sliver runs in (the next start adopts it). Checked on the kernel's own files.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { detectOwnCgroups } from '../../services/node-manager/drivers/cgroups.js';
import { instanceId } from '../../services/node-manager/index.js';
import { canContain, cannotContainReason, createSliver, startNodeManager, type NmHarness } from '../helpers/node-manager.js';

if (!canContain) console.log(`skipping cgroup clean-up tests: ${cannotContainReason}`);

/** The instance's directory in every cgroup hierarchy this process is in. */
function instanceDirs(dataDir: string): string[] {
  const layout = detectOwnCgroups();
  if (!('version' in layout)) throw new Error(layout.reason);
  const own = layout.version === 1 ? [...Object.values(layout.own), ...layout.hierarchies] : [layout.own];
  return [...new Set(own)].map((d) => join(d, 'fedlab', instanceId(dataDir)));
}

describe.skipIf(!canContain)('cgroup directories of a node manager', () => {
  const started: NmHarness[] = [];
  afterAll(async () => {
    for (const h of started) await h.destroy();
  });

  it('a stop with no sliver left removes the instance in every hierarchy; a stop with a live sliver keeps it', async () => {
    const h = await startNodeManager({ driver: 'container' });
    started.push(h);
    const dirs = instanceDirs(h.dataDir);
    expect(dirs.length).toBeGreaterThan(1);

    const s = await createSliver(h, 'kept', { sliceUrn: 'urn:fedlab:plc.test:slice:kept' });
    // runc made the sliver's cgroup beyond the controllers the node manager sets limits in.
    expect(dirs.filter((d) => existsSync(join(d, 'kept'))).length).toBe(dirs.length);
    await h.stop();
    expect(dirs.filter((d) => existsSync(join(d, 'kept'))).length).toBe(dirs.length);

    const again = await startNodeManager({ driver: 'container', dataDir: h.dataDir });
    started.push(again);
    await again.client().deleteSliver({ sliverUrn: s.urn }, { chain: again.parties.ownerChain });
    await again.stop();
    expect(dirs.filter((d) => existsSync(d))).toEqual([]);
  });
});
