/**
 * The sliver network of one node, resolved at start: the config's section
 * with what the host decides (the uplink from the default route, the node
 * address from the uplink, the underlay network from the interface holding
 * the underlay address), checked against the node's own addresses. A
 * sliver's lease — eth0's address and its block of forwarded ports — is a
 * function of the sliver's id range slot, which admission writes with the
 * record in one atomic batch and frees with it: the lease is held exactly as
 * long as the record, and two live slivers never share one.
 */
import { FailedPreconditionError, ResourceExhaustedError } from '../../core/errors.js';
import { contains, formatCidr, ipv4ToNumber, numberToIpv4, overlaps, parseCidr, sizeOf, type Ipv4Net } from './ipv4.js';
import type { NetCommands } from './net-command.js';
import { portRangeOf, type NetworkConfig } from './network-config.js';

/** One sliver's share of the node's network. */
export interface SliverLease {
  /** eth0's address. */
  readonly address: string;
  readonly prefix: number;
  readonly gateway: string;
  readonly nodeAddress: string;
  readonly firstPort: number;
  readonly lastPort: number;
}

/** The node's sliver network, resolved. */
export interface NetworkPlan {
  readonly subnet: Ipv4Net;
  /** The bridge's address: the slivers' default gateway. */
  readonly gateway: string;
  readonly bridge: string;
  readonly uplink: string;
  readonly nodeAddress: string;
  readonly firstPort: number;
  readonly lastPort: number;
  readonly portsPerSliver: number;
  readonly underlayAddress?: string;
  /** Networks slivers may not reach besides the node's own addresses (the underlay). */
  readonly underlayNetwork?: Ipv4Net;
  /** Where far hosts of links may be besides the underlay network (network.peer_underlays); absent: anywhere. */
  readonly peerUnderlays?: readonly Ipv4Net[];
  /** Underlays of other node managers on this host (network.host_underlays): links towards them use a host-wide hub. */
  readonly hostUnderlays?: readonly string[];
  /** How many slivers the plan has addresses and ports for. */
  readonly capacity: number;
}

/** One IPv4 address of an interface as `ip -j addr` shows it. */
interface AddrInfo {
  readonly family: string;
  readonly local: string;
  readonly prefixlen: number;
}

/** An interface as `ip -j addr` shows it. */
interface LinkAddrs {
  readonly ifname: string;
  readonly addr_info?: readonly AddrInfo[];
}

/** The node's IPv4 addresses by interface. */
export async function hostAddresses(run: NetCommands): Promise<{ ifname: string; local: string; prefixlen: number }[]> {
  const links = await run.ipJson<LinkAddrs>(['addr', 'show']);
  return links.flatMap((l) => (l.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => ({ ifname: l.ifname, ...a })));
}

/** The lease of a slot, or RESOURCE_EXHAUSTED when the plan has no addresses or ports left for it. */
export function leaseOf(plan: NetworkPlan, slot: number): SliverLease {
  if (!Number.isSafeInteger(slot) || slot < 0 || slot >= plan.capacity) {
    throw new ResourceExhaustedError(
      `the node's sliver network is full: ${formatCidr(plan.subnet)} and ports ${plan.firstPort}-${plan.lastPort} in blocks of ${plan.portsPerSliver} hold ${plan.capacity} slivers; delete a sliver or widen network.sliver_subnet or network.port_range`,
      { rule: 'network' },
    );
  }
  const firstPort = plan.firstPort + slot * plan.portsPerSliver;
  return {
    address: numberToIpv4(plan.subnet.base + 2 + slot),
    prefix: plan.subnet.prefix,
    gateway: plan.gateway,
    nodeAddress: plan.nodeAddress,
    firstPort,
    lastPort: firstPort + plan.portsPerSliver - 1,
  };
}

/**
 * Resolves the section against the host: the uplink (default route), the node
 * address, the underlay network; refuses a sliver subnet that holds or
 * overlaps an address of the node other than its own bridge's.
 */
export async function resolvePlan(n: NetworkConfig, run: NetCommands): Promise<NetworkPlan> {
  const subnet = parseCidr(n.sliver_subnet);
  const gateway = numberToIpv4(subnet.base + 1);
  const addrs = await hostAddresses(run);
  for (const a of addrs) {
    if (a.ifname === n.bridge && a.local === gateway) continue;
    const theirs = parseCidr(`${a.local}/${a.prefixlen}`, false);
    if (contains(subnet, ipv4ToNumber(a.local)) || (a.ifname !== 'lo' && overlaps(subnet, theirs))) {
      throw new FailedPreconditionError(
        `network.sliver_subnet ${n.sliver_subnet} clashes with the node's own address ${a.local}/${a.prefixlen} on ${a.ifname}; choose a sliver subnet the node does not use`,
        { field: 'network.sliver_subnet' },
      );
    }
  }
  let uplink = n.uplink;
  if (!uplink) {
    const routes = await run.ipJson<{ dev?: string }>(['route', 'show', 'default']);
    uplink = routes.find((r) => r.dev)?.dev;
    if (!uplink)
      throw new FailedPreconditionError(
        'network.uplink is not set and the node has no default route to take it from; name the uplink interface',
        { field: 'network.uplink' },
      );
  }
  const onUplink = addrs.filter((a) => a.ifname === uplink);
  if (n.uplink && onUplink.length === 0 && !(await linkExists(run, uplink))) {
    throw new FailedPreconditionError(`network.uplink ${uplink} is not an interface of this node`, { field: 'network.uplink' });
  }
  const nodeAddress = n.node_address ?? onUplink[0]?.local;
  if (!nodeAddress) {
    throw new FailedPreconditionError(`network.node_address is not set and the uplink ${uplink} has no IPv4 address to take it from`, {
      field: 'network.node_address',
    });
  }
  if (contains(subnet, ipv4ToNumber(nodeAddress))) {
    throw new FailedPreconditionError(`network.node_address ${nodeAddress} lies in network.sliver_subnet ${n.sliver_subnet}`, {
      field: 'network.node_address',
    });
  }
  let underlayNetwork = n.underlay_network ? parseCidr(n.underlay_network) : undefined;
  if (!underlayNetwork && n.underlay_address) {
    const holder = addrs.find((a) => a.local === n.underlay_address);
    if (holder) underlayNetwork = parseCidr(`${holder.local}/${holder.prefixlen}`, false);
  }
  if (underlayNetwork && overlaps(subnet, underlayNetwork)) {
    throw new FailedPreconditionError(
      `network.sliver_subnet ${n.sliver_subnet} overlaps the underlay network ${formatCidr(underlayNetwork)}`,
      { field: 'network.sliver_subnet' },
    );
  }
  const ports = portRangeOf(n);
  // .0 is the network, .1 the gateway, the last the broadcast address.
  const addresses = sizeOf(subnet) - 3;
  const blocks = Math.floor((ports.last - ports.first + 1) / n.ports_per_sliver);
  return {
    subnet,
    gateway,
    bridge: n.bridge,
    uplink,
    nodeAddress,
    firstPort: ports.first,
    lastPort: ports.last,
    portsPerSliver: n.ports_per_sliver,
    ...(n.underlay_address ? { underlayAddress: n.underlay_address } : {}),
    ...(underlayNetwork ? { underlayNetwork } : {}),
    ...(n.peer_underlays ? { peerUnderlays: n.peer_underlays.map((c) => parseCidr(c)) } : {}),
    ...(n.host_underlays?.length ? { hostUnderlays: [...n.host_underlays] } : {}),
    capacity: Math.min(addresses, blocks),
  };
}

async function linkExists(run: NetCommands, name: string): Promise<boolean> {
  return (await run.ipJson<{ ifname: string }>(['link', 'show'])).some((l) => l.ifname === name);
}
