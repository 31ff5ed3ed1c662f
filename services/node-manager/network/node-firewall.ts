/**
 * The node's nftables rules for the sliver network, in tables of its own
 * (`inet fedlab-<instance>` and `bridge fedlab-<instance>`; other tables are
 * never touched):
 *
 * - NAT: slivers' traffic leaving by the uplink is masqueraded; each sliver's
 *   block of ports on the node address is DNATed to the same ports of the
 *   sliver (map `port_fwd`, one interval per sliver), also for connections the
 *   node itself opens to its own address.
 * - Forward: slivers reach the uplink, never the underlay network (other
 *   nodes) except as replies; from outside only forwarded ports and replies
 *   reach slivers.
 * - Input: slivers reach none of the node's own addresses (node manager,
 *   SSH, anything on the host), except as replies.
 * - Link hubs: nothing arriving on a link's bridge reaches the node or is
 *   routed by it (the hubs only bridge slivers' link frames).
 * - VXLAN: slivers send nothing to UDP port 4789 anywhere (masqueraded, it
 *   would leave from the node's address, which peers trust for their links);
 *   the node takes and sends VXLAN of its links' VNIs only from and to the
 *   hosts its link plan names (vxlan-filter.ts).
 * - Bridge: a sliver's port passes only IPv4 and ARP from the sliver's own
 *   address (set `port_addr`: its root may change its interfaces, not pass
 *   as another); a frame between two sliver ports passes only when both
 *   carry the same slice mark (set `members`), so slices cannot reach each
 *   other on the bridge, ARP included.
 *
 * The rules are rewritten whole at every start (one transaction); the sets'
 * elements, one group per sliver, survive it and are added and removed with
 * the slivers.
 */
import { formatCidr } from './ipv4.js';
import { VXLAN_PORT } from './link-devices.js';
import { LINK_BRIDGE_PREFIX } from './link-names.js';
import type { NetCommands } from './net-command.js';
import { tableName } from './net-names.js';
import type { NetworkPlan, SliverLease } from './network-plan.js';
import { vxlanFilterLines } from './vxlan-filter.js';

/** What the firewall holds for one sliver. */
export interface SliverRules {
  /** The host side of the sliver's veth (its bridge port). */
  readonly port: string;
  readonly sliceMark: number;
  readonly lease: SliverLease;
}

/** The elements found in the tables (for restart and tests). */
export interface FirewallElements {
  /** Bridge ports with their slice mark. */
  readonly ports: Map<string, number>;
  /** Bridge ports with the address they may send from. */
  readonly portAddrs: Map<string, string>;
  /** Forwarded port blocks: `first-last` → sliver address. */
  readonly forwards: Map<string, string>;
}

const q = (s: string): string => JSON.stringify(s);
/** Link hubs' bridges of any site on the host (link-names.ts: `flk<hash>`). */
const HUBS = q(`${LINK_BRIDGE_PREFIX}*`);

/** The script that makes the tables and rewrites their rules (elements are kept). */
export function firewallScript(instance: string, p: NetworkPlan): string {
  const t = tableName(instance);
  const inet = `inet ${t}`;
  const br = q(p.bridge);
  const up = q(p.uplink);
  const subnet = formatCidr(p.subnet);
  const chains: Record<string, string> = {
    dstnat: 'type nat hook prerouting priority dstnat; policy accept;',
    localnat: 'type nat hook output priority -100; policy accept;',
    srcnat: 'type nat hook postrouting priority srcnat; policy accept;',
    forward: 'type filter hook forward priority filter; policy accept;',
    input: 'type filter hook input priority filter; policy accept;',
    output: 'type filter hook output priority filter; policy accept;',
  };
  const vxlan = vxlanFilterLines(inet, VXLAN_PORT);
  const lines = [
    `add table ${inet}`,
    `add map ${inet} port_fwd { type inet_service : ipv4_addr; flags interval; }`,
    ...vxlan.sets,
    ...Object.entries(chains).flatMap(([c, spec]) => [`add chain ${inet} ${c} { ${spec} }`, `flush chain ${inet} ${c}`]),
    `add rule ${inet} dstnat ip daddr ${p.nodeAddress} meta l4proto { tcp, udp } dnat ip to th dport map @port_fwd`,
    `add rule ${inet} localnat ip daddr ${p.nodeAddress} meta l4proto { tcp, udp } dnat ip to th dport map @port_fwd`,
    `add rule ${inet} srcnat ip saddr ${subnet} ip daddr != ${subnet} oifname ${up} masquerade`,
    // Bridged frames reach here only with br_netfilter loaded; the bridge table judges them.
    // A link's hub (a bridge with no address) only bridges: frames a sliver sends into it never reach the node's own
    // addresses nor are routed by it (a sliver's CAP_NET_RAW could address the node's MAC there, found by ARP).
    // Bridged frames come here only with br_netfilter (from and to the hub); no route leads from one hub to another.
    `add rule ${inet} forward iifname ${HUBS} oifname ${HUBS} accept`,
    `add rule ${inet} forward iifname ${HUBS} drop`,
    `add rule ${inet} forward oifname ${HUBS} drop`,
    `add rule ${inet} forward iifname ${br} oifname ${br} accept`,
    `add rule ${inet} forward iifname ${br} udp dport ${VXLAN_PORT} drop`,
    `add rule ${inet} forward iifname ${br} ct state established,related accept`,
    ...(p.underlayNetwork ? [`add rule ${inet} forward iifname ${br} ip daddr ${formatCidr(p.underlayNetwork)} drop`] : []),
    `add rule ${inet} forward iifname ${br} oifname ${up} accept`,
    `add rule ${inet} forward iifname ${br} drop`,
    `add rule ${inet} forward oifname ${br} ct state established,related accept`,
    `add rule ${inet} forward oifname ${br} ct status dnat accept`,
    `add rule ${inet} forward oifname ${br} drop`,
    `add rule ${inet} input iifname ${HUBS} drop`,
    `add rule ${inet} input iifname ${br} ct state established,related accept`,
    `add rule ${inet} input iifname ${br} drop`,
    ...vxlan.input,
    ...vxlan.output,
    `add table bridge ${t}`,
    `add set bridge ${t} ports { type ifname; }`,
    `add map bridge ${t} slice_of { type ifname : mark; }`,
    `add set bridge ${t} members { type mark . ifname; }`,
    `add set bridge ${t} port_addr { type ipv4_addr . ifname; }`,
    `add chain bridge ${t} prerouting { type filter hook prerouting priority filter; policy accept; }`,
    `flush chain bridge ${t} prerouting`,
    `add rule bridge ${t} prerouting iifname @ports ether type != { ip, arp } drop`,
    `add rule bridge ${t} prerouting iifname @ports ether type ip ip saddr . iifname != @port_addr drop`,
    `add rule bridge ${t} prerouting iifname @ports ether type arp arp saddr ip . iifname != @port_addr drop`,
    `add chain bridge ${t} forward { type filter hook forward priority filter; policy accept; }`,
    `flush chain bridge ${t} forward`,
    `add rule bridge ${t} forward iifname @ports oifname @ports meta mark set iifname map @slice_of`,
    `add rule bridge ${t} forward iifname @ports oifname @ports meta mark . oifname != @members drop`,
  ];
  return `${lines.join('\n')}\n`;
}

/** The node's firewall: the tables, and each sliver's elements. */
export class NodeFirewall {
  private readonly table: string;

  constructor(
    private readonly run: NetCommands,
    private readonly instance: string,
  ) {
    this.table = tableName(instance);
  }

  /** Makes the tables and rewrites their rules (elements stay). */
  async apply(plan: NetworkPlan): Promise<void> {
    await this.run.nftScript(firewallScript(this.instance, plan));
  }

  /** Adds a sliver's elements (idempotent). */
  async add(r: SliverRules): Promise<void> {
    const t = this.table;
    await this.run.nftScript(
      [
        `add element bridge ${t} ports { ${q(r.port)} }`,
        `add element bridge ${t} slice_of { ${q(r.port)} : ${r.sliceMark} }`,
        `add element bridge ${t} members { ${r.sliceMark} . ${q(r.port)} }`,
        `add element bridge ${t} port_addr { ${r.lease.address} . ${q(r.port)} }`,
        `add element inet ${t} port_fwd { ${r.lease.firstPort}-${r.lease.lastPort} : ${r.lease.address} }`,
      ].join('\n') + '\n',
    );
  }

  /** Removes the elements of bridge ports and forwarded blocks that are present (absent ones are skipped). */
  async remove(o: { ports?: readonly string[]; forwards?: readonly string[] }): Promise<void> {
    const have = await this.elements();
    const t = this.table;
    const lines: string[] = [];
    for (const port of o.ports ?? []) {
      const mark = have.ports.get(port);
      if (mark === undefined) continue;
      lines.push(`delete element bridge ${t} ports { ${q(port)} }`);
      lines.push(`delete element bridge ${t} slice_of { ${q(port)} }`);
      lines.push(`delete element bridge ${t} members { ${mark} . ${q(port)} }`);
      const addr = have.portAddrs.get(port);
      if (addr) lines.push(`delete element bridge ${t} port_addr { ${addr} . ${q(port)} }`);
    }
    for (const block of o.forwards ?? []) if (have.forwards.has(block)) lines.push(`delete element inet ${t} port_fwd { ${block} }`);
    if (lines.length) await this.run.nftScript(`${lines.join('\n')}\n`);
  }

  /** The elements in the tables now (empty when the tables are missing). */
  async elements(): Promise<FirewallElements> {
    const name = tableName(this.instance);
    const ports = new Map<string, number>();
    const portAddrs = new Map<string, string>();
    const forwards = new Map<string, string>();
    const exists = await this.exists();
    if (!exists.bridge && !exists.inet) return { ports, portAddrs, forwards };
    if (exists.bridge) {
      for (const o of await this.run.nftJson(['list', 'map', 'bridge', name, 'slice_of'])) {
        const elems = (o.map as { elem?: [string, number][] } | undefined)?.elem ?? [];
        for (const [port, mark] of elems) ports.set(port, mark);
      }
      for (const o of await this.run.nftJson(['list', 'set', 'bridge', name, 'port_addr'])) {
        const elems = (o.set as { elem?: { concat?: [string, string] }[] } | undefined)?.elem ?? [];
        for (const e of elems) if (e.concat) portAddrs.set(e.concat[1], e.concat[0]);
      }
    }
    if (exists.inet) {
      for (const o of await this.run.nftJson(['list', 'map', 'inet', name, 'port_fwd'])) {
        const elems = (o.map as { elem?: [unknown, string][] } | undefined)?.elem ?? [];
        for (const [key, addr] of elems) {
          const range = (key as { range?: [number, number] }).range;
          forwards.set(range ? `${range[0]}-${range[1]}` : `${String(key)}-${String(key)}`, addr);
        }
      }
    }
    return { ports, portAddrs, forwards };
  }

  /** Whether this instance's tables exist. */
  async exists(): Promise<{ inet: boolean; bridge: boolean }> {
    const name = tableName(this.instance);
    const tables = (await this.run.nftJson(['list', 'tables'])).flatMap((o) => {
      const t = o.table as { family: string; name: string } | undefined;
      return t && t.name === name ? [t.family] : [];
    });
    return { inet: tables.includes('inet'), bridge: tables.includes('bridge') };
  }

  /** Deletes this instance's tables (uninstall, tests). */
  async drop(): Promise<void> {
    const exists = await this.exists();
    const lines = [
      ...(exists.inet ? [`delete table inet ${this.table}`] : []),
      ...(exists.bridge ? [`delete table bridge ${this.table}`] : []),
    ];
    if (lines.length) await this.run.nftScript(`${lines.join('\n')}\n`);
  }
}
