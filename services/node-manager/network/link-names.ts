/**
 * The names and labels of link devices (links.ts): a link's bridge `flk<hash>`
 * and VXLAN device `flx<hash>` on the host (one of each per link and host,
 * hashed from the site's scope and the VNI: node managers of one site on one
 * host share them, since the kernel takes a VNI once per host and UDP port),
 * and a sliver's host-side veth end `fll<hash>` (from the node manager
 * instance, sliver and interface). Every host-side device carries an alias
 * naming its scope or instance, so that a restart finds its own again and
 * never touches another site's or node manager's.
 */
import { createHash } from 'node:crypto';

function hash12(...parts: readonly string[]): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 12);
}

/** The scope of a site's hubs: a hash of its management authority's URN (its VNIs are unique at the site). */
export function linkScope(siteUrn: string): string {
  return `site-${hash12(siteUrn)}`;
}

/**
 * The scope of host-wide hubs: a link whose far ends are other node managers on this host (network.host_underlays,
 * of any site) joins one bridge per VNI here, shared by every site — as a VXLAN device of the VNI would be.
 */
export const HOST_SCOPE = 'host';

/** How every link bridge's name begins (the firewall matches them all by it). */
export const LINK_BRIDGE_PREFIX = 'flk';

/** The bridge of a link (its VNI) of a site on this host. */
export function linkBridgeName(scope: string, vni: number): string {
  return `${LINK_BRIDGE_PREFIX}${hash12(scope, String(vni))}`;
}

/** The VXLAN device of a link of a site on this host (a port of its bridge). */
export function linkVxlanName(scope: string, vni: number): string {
  return `flx${hash12(scope, String(vni))}`;
}

/** The node-side end of a sliver's interface on a link bridge. */
export function linkPortName(instance: string, sliver: string, ifname: string): string {
  return `fll${hash12(instance, sliver, ifname)}`;
}

/** What a node-side link device says of itself. */
export type LinkLabel =
  | { readonly kind: 'bridge' | 'vxlan'; readonly vni: number }
  | { readonly kind: 'port'; readonly vni: number; readonly sliver: string; readonly ifname: string };

/** The alias of a host-side link device: `fedlab-link <scope|instance> <kind> <vni> [<sliver> <ifname>]` (ports name the instance). */
export function linkAlias(owner: string, l: LinkLabel): string {
  return l.kind === 'port' ? `fedlab-link ${owner} port ${l.vni} ${l.sliver} ${l.ifname}` : `fedlab-link ${owner} ${l.kind} ${l.vni}`;
}

/** Reads an alias written by {@link linkAlias}: this instance's ports, this scope's hubs. */
export function parseLinkAlias(instance: string, scope: string, alias: string | undefined): LinkLabel | undefined {
  const p = (alias ?? '').split(' ');
  if (p[0] !== 'fedlab-link') return undefined;
  const vni = Number(p[3]);
  if (!Number.isSafeInteger(vni)) return undefined;
  if (p[1] === scope && (p[2] === 'bridge' || p[2] === 'vxlan') && p.length === 4) return { kind: p[2], vni };
  if (p[1] === instance && p[2] === 'port' && p.length === 6) return { kind: 'port', vni, sliver: p[4] as string, ifname: p[5] as string };
  return undefined;
}
