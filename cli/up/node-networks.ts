/**
 * The sliver network of a local federation's node managers (docs/node-manager.md, "The sliver network"),
 * with the container driver only. Every node manager runs on this one host, so each gets a bridge, sliver
 * subnet and forwarded port block of its own, all from the federation's block (chosen once, kept in its
 * state file: another federation on this host takes another); each site an underlay address of its own,
 * and every node manager the list of them all (network.host_underlays), so that links between node
 * managers here — a site's own or stitched across sites — are made as bridges on this host and never as
 * VXLAN (the kernel takes a VNI once per UDP port and namespace). The underlay addresses are labels in
 * 198.18.0.0/15 (set aside for benchmarking networks, RFC 2544): nothing is sent to them, so no
 * interface holds them.
 */
import { createHash } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import { findTool } from '../../services/node-manager/network/net-command.js';
import type { LocalFederation } from './federation.js';
import type { SitePlan } from './plan.js';

/** Blocks there are: block b is the sliver subnets 10.(100+b).k.0/24 and ports 20000+b*400 onwards. */
const BLOCKS = 100;
/** Forwarded ports of a federation (its node managers share them). */
const PORTS_PER_FEDERATION = 400;

/** Whether this host has an address in 10.(100+b).0.0/16 (another federation's bridges, or anything else). */
function blockTaken(b: number): boolean {
  const prefix = `10.${100 + b}.`;
  return Object.values(networkInterfaces()).some((list) => (list ?? []).some((a) => a.family === 'IPv4' && a.address.startsWith(prefix)));
}

/** A block for a new federation in `dir`: from a hash of the directory, the next one no address of this host is in. */
export function chooseNetBlock(dir: string): number {
  const start = createHash('sha256').update(dir).digest().readUInt32BE(0) % BLOCKS;
  for (let i = 0; i < BLOCKS; i++) {
    const b = (start + i) % BLOCKS;
    if (!blockTaken(b)) return b;
  }
  return start;
}

/** A site's underlay address: 198.18.0.<its place in the plan + 1>. */
export function siteUnderlay(sites: readonly SitePlan[], domain: string): string {
  const k = sites.findIndex((s) => s.domain === domain);
  if (k < 0) throw new Error(`site ${domain} is not in the plan`);
  return `198.18.0.${k + 1}`;
}

/** A node manager's place among every node of the plan's sites (0, 1, ...). */
export function nodeIndexOf(sites: readonly SitePlan[], domain: string, name: string): number {
  let index = 0;
  for (const s of sites) {
    for (const n of s.nodes) {
      if (s.domain === domain && n.name === name) return index;
      index++;
    }
  }
  throw new Error(`node ${name} of ${domain} is not in the plan`);
}

/** The sliver bridge of the node manager at place `k` of block `b` (at most 15 characters). */
export function nodeBridge(b: number, k: number): string {
  return `flu${b}n${k}`;
}

/** Why the node managers' slivers get no network here (the container driver and ip and nft are needed), or undefined. */
export function noNetworkReason(fed: LocalFederation): string | undefined {
  if (fed.driver.kind !== 'container') return `the node managers run the ${fed.driver.kind} driver`;
  try {
    findTool('ip');
    findTool('nft');
  } catch (err) {
    return (err as Error).message;
  }
  return undefined;
}

/** The `network` section of a node manager, or undefined when its slivers get none ({@link noNetworkReason}). */
export function nodeNetworkOf(fed: LocalFederation, site: SitePlan, name: string) {
  const b = fed.state.net_block;
  if (b === undefined || noNetworkReason(fed) !== undefined) return undefined;
  const sites = fed.state.sites;
  const k = nodeIndexOf(sites, site.domain, name);
  const total = sites.reduce((n, s) => n + s.nodes.length, 0);
  const each = Math.max(1, Math.floor(PORTS_PER_FEDERATION / total));
  const first = 20_000 + b * PORTS_PER_FEDERATION + k * each;
  return {
    bridge: nodeBridge(b, k),
    sliver_subnet: `10.${100 + b}.${k}.0/24`,
    port_range: `${first}-${first + each - 1}`,
    // The node's 20 slivers share its ports (a sliver gets one when there are fewer than 20).
    ports_per_sliver: Math.max(1, Math.floor(each / 20)),
    underlay_address: siteUnderlay(sites, site.domain),
    host_underlays: sites.map((s) => siteUnderlay(sites, s.domain)),
  };
}
