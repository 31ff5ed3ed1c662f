/**
 * Stopping a local federation: every process in an order in which nobody loses the party it calls
 * mid-way, and the sweep of what the processes may have left on the machine (sliver runtimes,
 * cgroups, sliver networks, emulab network namespaces).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { silentLogger } from '../../services/core/log.js';
import { maInstance } from '../../services/management-authority/index.js';
import { purgeInstance } from '../../services/node-manager/drivers/instance-purge.js';
import { createDriver } from '../../services/node-manager/drivers/select.js';
import { instanceId } from '../../services/node-manager/index.js';
import type { DriverChoice } from './driver-choice.js';
import { hostHubsOf, removeHostHubs } from './host-hubs.js';
import { nodeBridge, nodeIndexOf } from './node-networks.js';
import type { SiteRuntime } from './federation.js';
import type { ServiceProcess } from './processes.js';

/**
 * Stops processes (given in start order): providers and authorities first, then node managers, then
 * MAs, each group at once; SIGTERM, then SIGKILL after `graceMs`. Returns the names of those killed.
 */
export async function stopInOrder(processes: readonly ServiceProcess[], graceMs: number): Promise<string[]> {
  const killed: string[] = [];
  const newestFirst = [...processes].reverse();
  const nms = newestFirst.filter((p) => p.options.role === 'nm');
  const others = newestFirst.filter((p) => p.options.role !== 'nm' && p.options.role !== 'ma');
  const mas = newestFirst.filter((p) => p.options.role === 'ma');
  for (const group of [others, nms, mas]) {
    const results = await Promise.all(group.map(async (proc) => ({ proc, result: await proc.stop(graceMs) })));
    for (const { proc, result } of results) if (result === 'killed') killed.push(proc.options.name);
  }
  return killed;
}

/**
 * Removes what the node managers may have left, whether they stopped or were killed: every node
 * instance's sliver runtimes, cgroups (the empty `fedlab/nm-*` directories too, and the shared
 * `fedlab` parent once the last one goes) and work directories, and its sliver network (namespaces,
 * veths, nftables tables: {@link purgeInstance}); then the emulab MAs' namespaces. Says what it removed.
 */
export async function sweepLeftovers(sites: readonly SiteRuntime[], driver: DriverChoice, netBlock?: number): Promise<string[]> {
  const removed: string[] = [];
  const hubsToo = driver.kind === 'container' && process.getuid?.() === 0;
  // Before the purge takes their ports away: the host-wide hubs these node managers' slivers were on.
  const ownHubs = hubsToo ? await hostHubsOf(sites.flatMap((s) => s.nodes.map((n) => instanceId(n.paths.data)))) : new Set<number>();
  for (const site of sites) {
    for (const node of site.nodes) {
      const data = node.paths.data;
      if (!existsSync(data)) continue;
      const options = {
        kind: driver.kind,
        workRoot: join(data, 'slivers'),
        instance: instanceId(data),
        netNamespace: false,
        log: silentLogger(),
        // The sliver bridge it was given (node-networks.ts): removed with its tables once no port is on it.
        ...(driver.kind === 'container' && netBlock !== undefined
          ? {
              bridge: nodeBridge(
                netBlock,
                nodeIndexOf(
                  sites.map((s) => s.plan),
                  site.domain,
                  node.name,
                ),
              ),
            }
          : {}),
      } as const;
      try {
        const left = await createDriver(options)
          .listArtifacts()
          .catch(() => [] as string[]);
        const net = await purgeInstance(options);
        if (left.length) removed.push(`${site.domain}/${node.name}: ${left.length} sliver runtime(s)`);
        // A node manager leaves its tables and bridge at every stop (for slivers that run on): not leftovers to report.
        const stray = net.filter((l) => !l.startsWith('nftables ') && !l.startsWith('bridge '));
        if (stray.length) removed.push(`${site.domain}/${node.name}: ${stray.join(', ')}`);
      } catch (err) {
        removed.push(`${site.domain}/${node.name}: could not purge (${(err as Error).message.split('\n')[0]})`);
      }
    }
    if (site.style === 'emulab' && process.getuid?.() === 0) removed.push(...removeNamespaces(site));
  }
  if (hubsToo) removed.push(...(await removeHostHubs(ownHubs)));
  return removed;
}

/** Deletes the network namespaces an emulab site's MA made (named after its instance). */
function removeNamespaces(site: SiteRuntime): string[] {
  const removed: string[] = [];
  const prefix = `fedlab-${maInstance(site.paths.maData)}-`;
  let list = '';
  try {
    list = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  } catch {
    list = '';
  }
  for (const ns of list
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(prefix))) {
    try {
      execFileSync('ip', ['netns', 'del', ns]);
      removed.push(`${site.domain}: namespace ${ns}`);
    } catch {
      // Already gone.
    }
  }
  return removed;
}
