/**
 * Purging a node manager instance (uninstall, tests, teardown), without its
 * config: every sliver runtime, cgroup and directory its driver knows, then
 * what its sliver network left — the slivers' network namespace names (the
 * machine's, in /run/netns), their host-side veths and link ports (found by
 * the aliases that name the instance), the instance's nftables tables
 * `fedlab-<instance>`, and its bridge when one is named and no port is left
 * on it. Only the calling process's network namespace is searched for
 * devices and tables (a node manager run elsewhere leaves them there).
 * Link hubs are shared by a site's node managers on one host and stay: the
 * link wirer removes those no port uses. Idempotent.
 */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { FailedPreconditionError } from '../../core/errors.js';
import { parseLinkAlias } from '../network/link-names.js';
import { findTool, NetCommands, NetworkCommandError } from '../network/net-command.js';
import { netnsPrefix, parseVethAlias } from '../network/net-names.js';
import { NodeFirewall } from '../network/node-firewall.js';
import { createDriver, type DriverOptions } from './select.js';

/** Options of {@link purgeInstance}. */
export interface InstancePurgeOptions extends DriverOptions {
  /** The instance's sliver bridge (`network.bridge`): removed when the instance's tables were here and no port is left on it. */
  readonly bridge?: string;
}

/** Whether a tool is installed. */
function hasTool(name: 'ip' | 'nft'): boolean {
  try {
    findTool(name);
    return true;
  } catch (err) {
    if (err instanceof FailedPreconditionError) return false;
    throw err;
  }
}

/** Runs a removal; an object already gone is not an error. */
async function gone(step: Promise<unknown>): Promise<void> {
  try {
    await step;
  } catch (err) {
    if (!(err instanceof NetworkCommandError && err.notFound)) throw err;
  }
}

/** Removes what the instance's sliver network left (see the module's comment); returns what it removed. */
export async function purgeSliverNetworks(instance: string, o: { bridge?: string; run?: NetCommands } = {}): Promise<string[]> {
  if (process.platform !== 'linux' || process.getuid?.() !== 0 || !hasTool('ip')) return [];
  const run = o.run ?? new NetCommands();
  const removed: string[] = [];
  // Names first: once the namespace goes, the veth ends inside it take their host-side peers with them.
  const prefix = netnsPrefix(instance);
  for (const ns of existsSync('/run/netns') ? await readdir('/run/netns') : []) {
    if (!ns.startsWith(prefix)) continue;
    await gone(run.ip(['netns', 'del', ns]));
    removed.push(`netns ${ns}`);
  }
  for (const l of await run.ipJson<{ ifname: string; ifalias?: string }>(['link', 'show'])) {
    const mine = parseVethAlias(instance, l.ifalias) !== undefined || parseLinkAlias(instance, '', l.ifalias)?.kind === 'port';
    if (!mine) continue;
    await gone(run.ip(['link', 'del', l.ifname]));
    removed.push(`link ${l.ifname}`);
  }
  let tables = false;
  if (hasTool('nft')) {
    const firewall = new NodeFirewall(run, instance);
    const had = await firewall.exists();
    tables = had.inet || had.bridge;
    await firewall.drop();
    if (tables) removed.push(`nftables fedlab-${instance}`);
  }
  // The bridge is named by config, not by instance: only when this instance's tables were here, and never with a port on it.
  if (o.bridge && tables) {
    const links = await run.ipJson<{ ifname: string }>(['link', 'show']);
    const ports = links.some((l) => l.ifname === o.bridge) ? await run.ipJson(['link', 'show', 'master', o.bridge]) : undefined;
    if (ports && ports.length === 0) {
      await gone(run.ip(['link', 'del', o.bridge]));
      removed.push(`bridge ${o.bridge}`);
    }
  }
  return removed;
}

/**
 * Removes everything of a node manager instance: its slivers' runtimes, cgroups and directories (the
 * driver's purge), then, for the container driver, what its sliver network left. Returns what the network
 * purge removed.
 */
export async function purgeInstance(o: InstancePurgeOptions): Promise<string[]> {
  await createDriver(o).purge();
  if (o.kind === 'simulated' || o.kind === 'process') return [];
  return purgeSliverNetworks(o.instance, o.bridge ? { bridge: o.bridge } : {});
}
