/**
 * Which hosts may speak VXLAN with this node, per VNI. Linux takes a VXLAN
 * packet for a VNI it has a device for from any source address; without a
 * filter anyone who can reach the node's UDP port 4789 (another site's node,
 * a host on the underlay, a peer site that named another VNI) could put
 * frames on a slice's link. The node's inet table (node-firewall.ts) holds
 * two sets: `vxlan_vnis`, the VNIs of this node manager's links, and
 * `vxlan_peers`, the (underlay address . VNI) pairs its link plan names. For
 * a VNI in the first, a packet in from, or out to, a pair not in the second
 * is dropped (the VNI read from the VXLAN header, bits 32-55 after the UDP
 * header). VNIs of other node managers on the host are theirs to judge.
 */
import type { NetCommands } from './net-command.js';
import { tableName } from './net-names.js';

/** The sets' declarations and the rules for the input and output chains of the inet table (firewallScript). */
export function vxlanFilterLines(inet: string, port: number): { sets: string[]; input: string[]; output: string[] } {
  // The VNI: 24 bits at byte 4 of the VXLAN header, which follows the 8-byte UDP header.
  const vni = '@th,96,24';
  const head = `udp dport ${port} ${vni} @vxlan_vnis`;
  return {
    sets: [`add set ${inet} vxlan_vnis { typeof ${vni}; }`, `add set ${inet} vxlan_peers { typeof ip saddr . ${vni}; }`],
    input: [`add rule ${inet} input ${head} ip saddr . ${vni} != @vxlan_peers drop`],
    output: [`add rule ${inet} output ${head} ip daddr . ${vni} != @vxlan_peers drop`],
  };
}

/** The filter's elements: VNIs and `address . vni` pairs. */
export interface VxlanElements {
  readonly vnis: Set<number>;
  readonly peers: Set<string>;
}

/** The VXLAN peer sets of one node manager instance. */
export class VxlanFilter {
  private readonly table: string;
  /** The elements as last read or written (this instance alone writes its sets). */
  private known: VxlanElements | undefined;

  constructor(
    private readonly run: NetCommands,
    instance: string,
  ) {
    this.table = tableName(instance);
  }

  /** The elements now (empty when the table or its sets are missing). */
  async elements(): Promise<VxlanElements> {
    const vnis = new Set<number>();
    const peers = new Set<string>();
    const read = async (set: string): Promise<unknown[]> => {
      const out = await this.run.nftJson(['list', 'set', 'inet', this.table, set]).catch(() => []);
      return out.flatMap((o) => (o.set as { elem?: unknown[] } | undefined)?.elem ?? []);
    };
    for (const e of await read('vxlan_vnis')) if (typeof e === 'number') vnis.add(e);
    for (const e of await read('vxlan_peers')) {
      const c = (e as { concat?: [string, number] }).concat;
      if (c) peers.add(`${c[0]} . ${c[1]}`);
    }
    return { vnis, peers };
  }

  /**
   * Makes the sets hold exactly `wanted` (VNI → the underlay addresses of its far hosts): what is missing is added
   * before what is extra goes, in one transaction.
   */
  async sync(wanted: ReadonlyMap<number, ReadonlySet<string>>): Promise<void> {
    const have = this.known ?? (await this.elements());
    const t = `inet ${this.table}`;
    const wantPeers = new Set<string>();
    for (const [vni, addrs] of wanted) for (const a of addrs) wantPeers.add(`${a} . ${vni}`);
    const lines: string[] = [];
    for (const p of wantPeers) if (!have.peers.has(p)) lines.push(`add element ${t} vxlan_peers { ${p} }`);
    for (const v of wanted.keys()) if (!have.vnis.has(v)) lines.push(`add element ${t} vxlan_vnis { ${v} }`);
    for (const v of have.vnis) if (!wanted.has(v)) lines.push(`delete element ${t} vxlan_vnis { ${v} }`);
    for (const p of have.peers) if (!wantPeers.has(p)) lines.push(`delete element ${t} vxlan_peers { ${p} }`);
    this.known = undefined;
    if (lines.length) await this.run.nftScript(`${lines.join('\n')}\n`);
    this.known = { vnis: new Set(wanted.keys()), peers: wantPeers };
  }
}
