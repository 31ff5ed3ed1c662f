/**
 * The host-wide link hubs (network.host_underlays: one bridge per VNI for the
 * stitched ends of node managers on this host) at a local federation's
 * teardown: which ones its node managers' ports were on, and removing those
 * no port is on once the purge took the ports away. Another federation's
 * hubs on this host are never touched or reported, and the removal runs
 * under the host's link hub lock, as the node managers' own sweeps do.
 */
import { HostLock } from '../../services/node-manager/network/host-lock.js';
import { LinkDevices } from '../../services/node-manager/network/link-devices.js';
import { HOST_SCOPE, linkBridgeName, parseLinkAlias } from '../../services/node-manager/network/link-names.js';
import { TcCommands } from '../../services/node-manager/network/link-shaping.js';
import { NetCommands } from '../../services/node-manager/network/net-command.js';

/** The VNIs of the host-wide link hubs (network.host_underlays) that ports of these node manager instances are on. */
export async function hostHubsOf(instances: readonly string[]): Promise<Set<number>> {
  let links: { ifname: string; ifalias?: string; master?: string }[];
  try {
    links = await new NetCommands().ipJson(['link', 'show']);
  } catch {
    return new Set();
  }
  const vnis = new Set<number>();
  for (const l of links) {
    for (const instance of instances) {
      const label = parseLinkAlias(instance, HOST_SCOPE, l.ifalias);
      if (label?.kind === 'port' && l.master === linkBridgeName(HOST_SCOPE, label.vni)) vnis.add(label.vni);
    }
  }
  return vnis;
}

/**
 * Deletes the host-wide link hubs of `vnis` that no port is on once the purge took these node managers' ports away
 * (a node manager removes a hub at its last sliver's delete; one stopped before that leaves it). Another federation's
 * hubs on this host are not touched, and the sweep runs under the host's link hub lock (`lock`), as node managers'
 * own do. Never throws: what it could not do is one line of the list, for the teardown's report.
 */
export async function removeHostHubs(vnis: ReadonlySet<number>, lock: HostLock = new HostLock()): Promise<string[]> {
  if (vnis.size === 0) return [];
  const net = new NetCommands();
  try {
    const hubs = new LinkDevices('', HOST_SCOPE, net, new TcCommands(net.timeoutMs));
    const gone = await lock.run(() => hubs.sweepHubs({ only: vnis }));
    return gone.map((vni) => `host link hub ${linkBridgeName(HOST_SCOPE, vni)}`);
  } catch (err) {
    return [`host link hubs: could not sweep (${(err as Error).message.split('\n')[0]})`];
  }
}
