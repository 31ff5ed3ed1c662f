/**
 * The names and labels of link devices (links.ts): a link's bridge `flk<hash>`
 * and VXLAN device `flx<hash>` on the node (one of each per link and node,
 * hashed from the node manager instance and the VNI), and a sliver's
 * node-side veth end `fll<hash>` (from instance, sliver and interface). Every
 * node-side device carries an alias naming the instance, so that a restart
 * finds its own again and never touches another node manager's.
 */
import { createHash } from 'node:crypto';

function hash12(...parts: readonly string[]): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 12);
}

/** The bridge of a link (its VNI) on this node. */
export function linkBridgeName(instance: string, vni: number): string {
  return `flk${hash12(instance, String(vni))}`;
}

/** The VXLAN device of a link on this node (a port of its bridge). */
export function linkVxlanName(instance: string, vni: number): string {
  return `flx${hash12(instance, String(vni))}`;
}

/** The node-side end of a sliver's interface on a link bridge. */
export function linkPortName(instance: string, sliver: string, ifname: string): string {
  return `fll${hash12(instance, sliver, ifname)}`;
}

/** What a node-side link device says of itself. */
export type LinkLabel =
  | { readonly kind: 'bridge' | 'vxlan'; readonly vni: number }
  | { readonly kind: 'port'; readonly vni: number; readonly sliver: string; readonly ifname: string };

/** The alias of a node-side link device: `fedlab-link <instance> <kind> <vni> [<sliver> <ifname>]`. */
export function linkAlias(instance: string, l: LinkLabel): string {
  return l.kind === 'port'
    ? `fedlab-link ${instance} port ${l.vni} ${l.sliver} ${l.ifname}`
    : `fedlab-link ${instance} ${l.kind} ${l.vni}`;
}

/** Reads an alias written by {@link linkAlias} for this instance. */
export function parseLinkAlias(instance: string, alias: string | undefined): LinkLabel | undefined {
  const p = (alias ?? '').split(' ');
  if (p[0] !== 'fedlab-link' || p[1] !== instance) return undefined;
  const vni = Number(p[3]);
  if (!Number.isSafeInteger(vni)) return undefined;
  if ((p[2] === 'bridge' || p[2] === 'vxlan') && p.length === 4) return { kind: p[2], vni };
  if (p[2] === 'port' && p.length === 6) return { kind: 'port', vni, sliver: p[4] as string, ifname: p[5] as string };
  return undefined;
}
