/**
 * The node's side of the sliver network: IPv4 forwarding on, the bridge with
 * the gateway address (no IPv6 on it: slivers have none), and the firewall
 * tables. Made at every start (idempotent) and left in place at a stop: the
 * slivers that keep running need them. Removed only by a purge.
 */
import { readFile, writeFile } from 'node:fs/promises';
import type { Logger } from '../../core/log.js';
import { NetworkCommandError, type NetCommands } from './net-command.js';
import type { NodeFirewall } from './node-firewall.js';
import type { NetworkPlan } from './network-plan.js';

const IP_FORWARD = '/proc/sys/net/ipv4/ip_forward';

/** Makes the bridge, its address, forwarding and the firewall. */
export async function ensureNodeNetwork(run: NetCommands, plan: NetworkPlan, firewall: NodeFirewall, log: Logger): Promise<void> {
  const links = await run.ipJson<{ ifname: string; link_type?: string }>(['link', 'show']);
  if (!links.some((l) => l.ifname === plan.bridge)) {
    await run.ip(['link', 'add', plan.bridge, 'type', 'bridge']);
    log.info({ bridge: plan.bridge }, 'made the sliver bridge');
  }
  await writeFile(`/proc/sys/net/ipv6/conf/${plan.bridge}/disable_ipv6`, '1').catch(() => undefined);
  await run.ip(['addr', 'replace', `${plan.gateway}/${plan.subnet.prefix}`, 'dev', plan.bridge]);
  await run.ip(['link', 'set', plan.bridge, 'up']);
  if ((await readFile(IP_FORWARD, 'utf8')).trim() !== '1') {
    await writeFile(IP_FORWARD, '1');
    log.info('turned IPv4 forwarding on for the sliver network (NAT to the uplink)');
  }
  await firewall.apply(plan);
}

/** Removes the firewall tables and the bridge (purge). */
export async function removeNodeNetwork(run: NetCommands, plan: NetworkPlan, firewall: NodeFirewall): Promise<void> {
  await firewall.drop();
  try {
    await run.ip(['link', 'del', plan.bridge]);
  } catch (err) {
    if (!(err instanceof NetworkCommandError && err.notFound)) throw err;
  }
}
