/**
 * The node manager's `network` config section: the sliver network of every
 * container sliver (docs/node-manager.md, "The sliver network"). Absent:
 * slivers keep a loopback-only network namespace. Compiled once with the rest
 * of the config; what depends on the host (the uplink, its address, clashes
 * with the node's own addresses) is resolved at start (network-plan.ts).
 */
import { z } from 'zod';
import { isCidr, isIpv4, parseCidr } from './ipv4.js';

/** A Linux interface name: at most 15 characters, no '/', ':' or blanks. */
export function isInterfaceName(s: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/.test(s);
}

/** `first-last` ports. */
function parsePortRange(s: string): { first: number; last: number } | undefined {
  const m = /^(\d{1,5})-(\d{1,5})$/.exec(s);
  if (!m) return undefined;
  const first = Number(m[1]);
  const last = Number(m[2]);
  return first >= 1024 && last <= 65_535 && first <= last ? { first, last } : undefined;
}

const cidr = z.string().refine(isCidr, 'must be an IPv4 network a.b.c.d/len with no host bits set');
const address = z.string().refine(isIpv4, 'must be an IPv4 address a.b.c.d');

/** The `network` section. */
export const networkConfigSchema = z
  .object({
    /** Slivers' addresses come from here: the node's bridge takes the first, slivers the following ones. */
    sliver_subnet: cidr
      .refine((s) => parseCidr(s).prefix <= 29, 'must hold at least 8 addresses (a /29 or larger)')
      .default('10.88.0.0/16'),
    /** The node's sliver bridge. */
    bridge: z.string().refine(isInterfaceName, 'must be an interface name of at most 15 letters, digits, ".", "_" or "-"').default('flbr0'),
    /** The interface slivers' traffic leaves by (masqueraded); the default route's when absent. */
    uplink: z.string().refine(isInterfaceName, 'must be an interface name of at most 15 characters').optional(),
    /** Where the slivers' forwarded ports are reachable; the uplink's first IPv4 address when absent. */
    node_address: address.optional(),
    /** Ports forwarded from node_address, `first-last` (1024 to 65535), split into one block per sliver. */
    port_range: z
      .string()
      .refine((s) => parsePortRange(s) !== undefined, 'must be "first-last" with 1024 <= first <= last <= 65535')
      .default('20000-29999'),
    /** Ports per sliver. */
    ports_per_sliver: z.number().int().min(1).max(4096).default(10),
    /** This node's address on the underlay network (where other nodes' link ends reach it); reported to the MA. */
    underlay_address: address.optional(),
    /** The underlay network, which slivers may not reach; the network of the interface holding underlay_address when absent. */
    underlay_network: cidr.optional(),
    /**
     * Far hosts this node's links may reach besides the underlay network (CIDRs): a link whose far underlay is in
     * neither is refused at CreateSliver. Absent: any unicast address (a stitched link's peer may be anywhere).
     */
    peer_underlays: z.array(cidr).max(64).optional(),
    /**
     * Underlay addresses of other node managers on this same host (of any site, e.g. `fedlab up`'s): a link's end
     * towards them joins a host-wide hub bridge of the link's VNI instead of a VXLAN device, since the kernel takes a
     * VNI once per UDP port and namespace whatever the local address (docs/node-manager.md, "Links").
     */
    host_underlays: z.array(address).max(64).optional(),
    /** Deadline of every ip and nft call (ms). */
    command_timeout_ms: z.number().int().min(100).max(120_000).default(5_000),
  })
  .strict()
  .refine(
    (n) => {
      const r = parsePortRange(n.port_range);
      return r === undefined || n.ports_per_sliver <= r.last - r.first + 1;
    },
    { message: 'ports_per_sliver must not exceed the ports of port_range', path: ['ports_per_sliver'] },
  );

/** The compiled `network` section. */
export type NetworkConfig = z.infer<typeof networkConfigSchema>;

/** The first and last port of a valid `port_range`. */
export function portRangeOf(n: Pick<NetworkConfig, 'port_range'>): { first: number; last: number } {
  const r = parsePortRange(n.port_range);
  if (!r) throw new Error(`bad port_range ${n.port_range}`);
  return r;
}
