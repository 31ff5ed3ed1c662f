/**
 * The demo slice's links: on the emulab site, two nodes joined by a link shaped to 50 Mbit/s, and a
 * link stitched between a planetlab sliver and an emulab sliver (20 Mbit/s), asked with the demo
 * deployment itself — so that they live and die with it. Then, from the slice's manifest, one
 * command per link that logs in to one end with OpenSSH and pings the other end's address.
 *
 * Links need slivers with a network of their own (the container driver, `ip` and `nft`): without
 * one, or without the sites and nodes a link needs, no link is asked for and the summary says why.
 */
import type { Link, NodeSelector, SliverInterface } from '../../services/generated/fedlab/v1/common.js';
import type { Slice, StitchedLink } from '../../services/generated/fedlab/v1/slice_authority.js';
import type { SshHost } from '../commands/sliver/ssh-config-render.js';
import type { LocalFederation } from './federation.js';
import { noNetworkReason } from './node-networks.js';

/** The shaped emulab link's rate (kbit/s). */
export const DEMO_LINK_KBPS = 50_000;
/** The stitched link's rate (kbit/s). */
export const DEMO_STITCH_KBPS = 20_000;

/** What the demo deployment asks for besides nodes. */
export interface DemoLinks {
  /** Per site domain: client ids for its nodes and its own links. */
  readonly sites: ReadonlyMap<string, { readonly clientIds: readonly string[]; readonly links: readonly Link[] }>;
  readonly stitched: readonly StitchedLink[];
  /** Why a link was not asked for (one line each). */
  readonly skipped: readonly string[];
}

/** The client id of a site's `i`-th node in the demo request. */
const cid = (i: number): string => `n${i}`;

/** The demo's links for this federation, asking `perSite` nodes of each site (see the module comment). */
export function demoLinks(fed: LocalFederation, perSite?: number): DemoLinks {
  const sites = new Map<string, { clientIds: string[]; links: Link[] }>();
  const stitched: StitchedLink[] = [];
  const skipped: string[] = [];
  const noNet = noNetworkReason(fed);
  if (noNet) return { sites, stitched, skipped: [`no links in the demo slice: its slivers get no network (${noNet})`] };
  const count = (domain: string): number =>
    Math.min(perSite ?? Number.MAX_SAFE_INTEGER, fed.sites.find((s) => s.domain === domain)?.nodes.length ?? 0);
  const named = (domain: string) => {
    let s = sites.get(domain);
    if (!s) {
      s = { clientIds: Array.from({ length: count(domain) }, (_, i) => cid(i)), links: [] };
      sites.set(domain, s);
    }
    return s;
  };
  const emulab = fed.sites.find((s) => s.style === 'emulab');
  const planetlab = fed.sites.find((s) => s.style === 'planetlab');
  if (!emulab) skipped.push('no emulab link: the federation has no emulab site');
  else if (count(emulab.domain) < 2) skipped.push(`no emulab link: ${emulab.domain} has fewer than two nodes (--nodes)`);
  else
    named(emulab.domain).links.push({
      name: 'link0',
      endpoints: [cid(0), cid(1)],
      bandwidthKbps: DEMO_LINK_KBPS,
      delayMs: 0,
      lossPercent: 0,
    });
  if (!emulab || !planetlab) skipped.push('no stitched link: it needs a planetlab and an emulab site (--sites)');
  else if (count(planetlab.domain) < 1 || count(emulab.domain) < 1) skipped.push('no stitched link: a site has no node');
  else {
    // The emulab end on a node of its own where there is one, so that each sliver has one link.
    const at = Math.min(2, count(emulab.domain) - 1);
    named(planetlab.domain);
    named(emulab.domain);
    stitched.push({
      name: 'wan0',
      endpoints: [
        { site: planetlab.domain, clientId: cid(0) },
        { site: emulab.domain, clientId: cid(at) },
      ],
      bandwidthKbps: DEMO_STITCH_KBPS,
      delayMs: 0,
      lossPercent: 0,
    });
  }
  return { sites, stitched, skipped };
}

/** `selector` with the client ids of `links` for its site, if any. */
export function withClientIds(selector: NodeSelector, site: string, links: DemoLinks | undefined): NodeSelector {
  const s = links?.sites.get(site);
  return s ? { ...selector, clientIds: [...s.clientIds] } : selector;
}

/** An interface's address without its prefix length. */
const bare = (i: SliverInterface): string => i.address.split('/')[0] ?? '';

/**
 * One command per link of `slice` with two ends: log in to the first end's sliver (its `Host` in
 * `hosts`, written to the ssh_config `config`) and ping the second end's address across the link.
 */
export function linkPingLines(config: string, slice: Slice, hosts: readonly SshHost[]): string[] {
  const ends = new Map<string, { sliverUrn: string; iface: SliverInterface }[]>();
  for (const sliver of slice.slivers) {
    for (const iface of sliver.interfaces) {
      if (!iface.address) continue;
      ends.set(iface.link, [...(ends.get(iface.link) ?? []), { sliverUrn: sliver.urn, iface }]);
    }
  }
  const lines: string[] = [];
  for (const [link, [a, b]] of [...ends].sort(([x], [y]) => x.localeCompare(y))) {
    const from = a && hosts.find((h) => h.sliverUrn === a.sliverUrn);
    if (!a || !b || !from) continue;
    const to = hosts.find((h) => h.sliverUrn === b.sliverUrn);
    const rate = a.iface.bandwidthKbps ? `, ${a.iface.bandwidthKbps / 1000} Mbit/s` : '';
    lines.push(
      `  # across ${link} (${from.alias} ${a.iface.name} -> ${to?.alias ?? b.sliverUrn} ${b.iface.name}${rate})`,
      `  ssh -F ${config} ${from.alias} 'busybox ping -c 3 -W 5 ${bare(b.iface)}'`,
    );
  }
  return lines;
}
