/**
 * The kernel devices of links on one node (links.ts decides which): a veth
 * pair between two slivers' namespaces; a link's hub on the node — a bridge
 * with a VXLAN device on it (kernel vxlan, UDP port 4789 from the node's
 * underlay address, one all-zero forwarding entry per far node so that
 * broadcasts reach each) — and a sliver's veth into it; an interface's MAC,
 * MTU, address and state inside the sliver's namespace. Every call is `ip`,
 * `bridge` or `tc` with a deadline; every make is idempotent (what exists is
 * checked and completed, never made twice).
 */
import { NetworkCommandError, type NetCommands } from './net-command.js';
import { linkAlias, linkBridgeName, linkPortName, linkVxlanName, parseLinkAlias, type LinkLabel } from './link-names.js';
import type { ShapingPlan, TcCommands } from './link-shaping.js';

/** The UDP port of VXLAN (IANA). */
export const VXLAN_PORT = 4789;

/** A device as `ip -j link show` describes it. */
export interface DeviceInfo {
  readonly ifname: string;
  /** The kernel's index: a device made again under the same name has a new one. */
  readonly ifindex?: number;
  readonly ifalias?: string;
  readonly master?: string;
  readonly mtu?: number;
  readonly address?: string;
  readonly flags?: readonly string[];
}

/** A node-side link device of this instance with its label. */
export interface LabelledDevice extends DeviceInfo {
  readonly label: LinkLabel;
}

/** One end of an interface inside a sliver's namespace. */
export interface InterfaceEnd {
  readonly netns: string;
  readonly ifname: string;
  readonly mac: string;
  /** CIDR; empty: none. */
  readonly address: string;
  readonly shaping: ShapingPlan;
}

/** Whether an error says the device (or namespace) is not there. */
function gone(err: unknown): boolean {
  return err instanceof NetworkCommandError && err.notFound;
}

/** Link devices of one node manager instance. */
export class LinkDevices {
  /** The links' MTU over VXLAN (read once). */
  private mtu: number | undefined;
  /**
   * Flood entries known per VXLAN device (read once, then kept as they are added), with the device's index: another
   * node manager of the site may have removed the device and made it again since, without these entries.
   */
  private readonly flood = new Map<string, { readonly ifindex: number | undefined; readonly known: Set<string> }>();

  constructor(
    private readonly instance: string,
    /** The site's scope (link-names.ts): hubs are shared with the site's other node managers on this host. */
    private readonly scope: string,
    private readonly run: NetCommands,
    private readonly tools: TcCommands,
  ) {}

  /** This instance's host-side ports and this site's hubs. */
  async nodeDevices(all?: readonly DeviceInfo[]): Promise<LabelledDevice[]> {
    return (all ?? (await this.run.ipJson<DeviceInfo>(['link', 'show']))).flatMap((d) => {
      const label = parseLinkAlias(this.instance, this.scope, d.ifalias);
      return label ? [{ ...d, label }] : [];
    });
  }

  /** The devices inside a namespace (none when it is gone). */
  async devicesIn(netns: string): Promise<DeviceInfo[]> {
    return this.run.ipJson<DeviceInfo>(['-n', netns, 'link', 'show']).catch((err: unknown) => {
      if (gone(err) || err instanceof NetworkCommandError) return [];
      throw err;
    });
  }

  /** Every device of the host's namespace (one listing per wiring, handed to the steps below). */
  hostDevices(): Promise<DeviceInfo[]> {
    return this.run.ipJson<DeviceInfo>(['link', 'show']);
  }

  /**
   * Makes (or completes) the link's hub on the host: its bridge and, when some of `remotes` is another host, a VXLAN
   * device on it from `underlay` with a flood entry towards each. `host`: the host's devices as listed before.
   * Returns the link's MTU here (the VXLAN device's).
   */
  async ensureHub(vni: number, underlay: string, remotes: readonly string[], host: readonly DeviceInfo[]): Promise<number> {
    // Not towards this host itself: the site's other node managers here are on the same bridge.
    const far = remotes.filter((r) => r !== underlay);
    const bridge = linkBridgeName(this.scope, vni);
    const vxlan = linkVxlanName(this.scope, vni);
    const have = new Map(host.map((d) => [d.ifname, d]));
    const br = have.get(bridge);
    if (!br) {
      await this.run.ip(['link', 'add', bridge, 'type', 'bridge']).catch((err: unknown) => {
        if (!(err instanceof NetworkCommandError && /exists/i.test(err.stderr))) throw err;
        return '';
      });
      // Bridged link frames are the slivers' own: the node's IP filters never see them.
      await this.run.ip(['link', 'set', bridge, 'type', 'bridge', 'nf_call_iptables', '0', 'nf_call_arptables', '0']).catch(() => '');
    }
    // No ARP on the hub itself: the host would answer there for its own addresses (the firewall drops what follows).
    if (!br?.ifalias || !br.flags?.includes('UP') || !br.flags.includes('NOARP'))
      await this.run.ip(['link', 'set', bridge, 'alias', linkAlias(this.scope, { kind: 'bridge', vni }), 'arp', 'off', 'up']);
    // Every endpoint on this host: veths on the bridge, no VXLAN at all.
    if (far.length === 0) return 1500;
    let vx = have.get(vxlan);
    if (!vx) {
      this.flood.delete(vxlan);
      await this.run
        .ip([
          'link',
          'add',
          vxlan,
          'mtu',
          String(await this.linkMtu(underlay)),
          'type',
          'vxlan',
          'id',
          String(vni),
          'local',
          underlay,
          'dstport',
          String(VXLAN_PORT),
        ])
        .catch((err: unknown) => {
          // Another node manager of the site on this host made it meanwhile.
          if (!(err instanceof NetworkCommandError && /exists/i.test(err.stderr))) throw err;
          return '';
        });
    }
    if (!vx || vx.master !== bridge || !vx.flags?.includes('UP')) {
      await this.run.ip(['link', 'set', vxlan, 'alias', linkAlias(this.scope, { kind: 'vxlan', vni }), 'master', bridge, 'up']);
      vx = (await this.run.ipJson<DeviceInfo>(['link', 'show', 'dev', vxlan]))[0];
    }
    const cached = this.flood.get(vxlan);
    let known = cached && cached.ifindex === vx?.ifindex ? cached.known : undefined;
    if (!known) {
      const fdb = await this.tools.bridge(['-j', 'fdb', 'show', 'dev', vxlan]);
      const entries = fdb.trim() ? (JSON.parse(fdb) as { mac?: string; dst?: string }[]) : [];
      known = new Set(entries.filter((e) => e.mac === '00:00:00:00:00:00' && e.dst).map((e) => e.dst as string));
      this.flood.set(vxlan, { ifindex: vx?.ifindex, known });
    }
    for (const r of far) {
      if (known.has(r)) continue;
      await this.tools.bridge(['fdb', 'append', '00:00:00:00:00:00', 'dev', vxlan, 'dst', r]).catch((err: unknown) => {
        // Another node manager of the site on this host added it meanwhile.
        if (!(err instanceof NetworkCommandError && /exists/i.test(err.stderr))) throw err;
        return '';
      });
      known.add(r);
    }
    return vx?.mtu ?? (await this.linkMtu(underlay));
  }

  /** A link's MTU over VXLAN: the MTU of the interface holding the underlay address, less the 50 bytes of encapsulation. */
  async linkMtu(underlay: string): Promise<number> {
    if (this.mtu === undefined) {
      const addrs = await this.run.ipJson<{ mtu?: number; addr_info?: { local?: string }[] }>(['addr', 'show']);
      this.mtu = (addrs.find((a) => a.addr_info?.some((i) => i.local === underlay))?.mtu ?? 1500) - 50;
    }
    return this.mtu;
  }

  /**
   * Makes (or completes) an interface that is itself a VXLAN device inside the sliver's namespace (its UDP socket in
   * the host's, from `underlay`), with a flood entry towards each far host: the one endpoint of the link on this host.
   */
  async direct(vni: number, underlay: string, far: readonly string[], end: InterfaceEnd): Promise<void> {
    const mtu = await this.linkMtu(underlay);
    const fresh = !(await this.devicesIn(end.netns)).some((d) => d.ifname === end.ifname);
    if (fresh) {
      const args = ['type', 'vxlan', 'id', String(vni), 'local', underlay, 'dstport', String(VXLAN_PORT)];
      await this.run.ip(['link', 'add', end.ifname, 'netns', end.netns, 'mtu', String(mtu), ...args]);
    }
    const fdb = fresh ? '' : await this.tools.bridge(['-n', end.netns, '-j', 'fdb', 'show', 'dev', end.ifname]);
    const entries = fdb.trim() ? (JSON.parse(fdb) as { mac?: string; dst?: string }[]) : [];
    const known = new Set(entries.filter((e) => e.mac === '00:00:00:00:00:00').map((e) => e.dst));
    for (const r of far)
      if (!known.has(r)) await this.tools.bridge(['-n', end.netns, 'fdb', 'append', '00:00:00:00:00:00', 'dev', end.ifname, 'dst', r]);
    await this.configure(end, mtu, fresh);
  }

  /**
   * Makes (or completes) a sliver's veth into a link's hub: the host-side port on the bridge, `end` inside (two
   * `ip -batch` calls). `host`: the host's devices as listed before.
   */
  async attach(vni: number, sliver: string, end: InterfaceEnd, mtu: number, host: readonly DeviceInfo[]): Promise<void> {
    const port = linkPortName(this.instance, sliver, end.ifname);
    const nodeSide = host.some((d) => d.ifname === port);
    const inside = (await this.devicesIn(end.netns)).some((d) => d.ifname === end.ifname);
    const fresh = !nodeSide || !inside;
    const lines: string[] = [];
    if (fresh) {
      // Half a pair (a crash between two steps) goes first: the pair is made whole or not at all.
      if (nodeSide) await this.del(port);
      if (inside) await this.delIn(end.netns, end.ifname);
      lines.push(`link add ${port} type veth peer name ${end.ifname} netns ${end.netns}`);
    }
    const alias = linkAlias(this.instance, { kind: 'port', vni, sliver, ifname: end.ifname });
    lines.push(`link set ${port} alias "${alias}" mtu ${mtu} master ${linkBridgeName(this.scope, vni)} up`);
    await this.run.ip(['-batch', '-'], `${lines.join('\n')}\n`);
    await this.configure(end, mtu, fresh);
  }

  /** Makes (or completes) a veth pair between two slivers' namespaces, each end configured. */
  async pair(a: InterfaceEnd, b: InterfaceEnd): Promise<void> {
    const aHas = (await this.devicesIn(a.netns)).some((d) => d.ifname === a.ifname);
    const bHas = (await this.devicesIn(b.netns)).some((d) => d.ifname === b.ifname);
    const fresh = !aHas || !bHas;
    if (fresh) {
      if (aHas) await this.delIn(a.netns, a.ifname);
      if (bHas) await this.delIn(b.netns, b.ifname);
      await this.run.ip(['link', 'add', a.ifname, 'netns', a.netns, 'type', 'veth', 'peer', 'name', b.ifname, 'netns', b.netns]);
    }
    await this.configure(a, 1500, fresh);
    await this.configure(b, 1500, fresh);
  }

  /** An interface's MAC, MTU, address, state and egress shaping inside its namespace (`fresh`: just made, no qdisc yet). */
  async configure(end: InterfaceEnd, mtu: number, fresh: boolean): Promise<void> {
    const { netns, ifname } = end;
    const lines = [
      ...(end.address ? [`addr replace ${end.address} dev ${ifname}`] : []),
      `link set dev ${ifname} address ${end.mac} mtu ${mtu} up`,
    ];
    await this.run.ip(['-n', netns, '-batch', '-'], `${lines.join('\n')}\n`);
    if (end.shaping.commands.length) await this.tools.apply(netns, end.shaping);
    else if (!fresh) await this.tools.clear(netns, ifname);
  }

  /** Removes a sliver's node-side ports (their ends inside go with them). */
  async detach(sliver: string): Promise<void> {
    for (const d of await this.nodeDevices()) if (d.label.kind === 'port' && d.label.sliver === sliver) await this.del(d.ifname);
  }

  /**
   * This scope's hubs no sliver's port is on any more (any node manager's), by VNI with their devices: bridges with
   * nothing but their VXLAN device, and VXLAN devices left without their bridge (a crash between two steps). `all`:
   * the host's devices.
   */
  async idleHubs(all?: readonly DeviceInfo[]): Promise<Map<number, string[]>> {
    const devices = all ?? (await this.hostDevices());
    const idle = new Map<number, string[]>();
    const add = (vni: number, ...names: string[]): void => {
      idle.set(vni, [...(idle.get(vni) ?? []), ...names]);
    };
    for (const d of await this.nodeDevices(devices)) {
      if (d.label.kind === 'bridge') {
        const vxlan = linkVxlanName(this.scope, d.label.vni);
        // Its VXLAN device first: the bridge would otherwise be left with a port for a moment.
        if (!devices.some((x) => x.master === d.ifname && x.ifname !== vxlan)) add(d.label.vni, vxlan, d.ifname);
      } else if (d.label.kind === 'vxlan' && !devices.some((x) => x.ifname === linkBridgeName(this.scope, d.label.vni))) {
        add(d.label.vni, d.ifname);
      }
    }
    return idle;
  }

  /**
   * Removes this scope's idle hubs ({@link idleHubs}), or only those of the VNIs in `only`; returns their VNIs.
   * `all`: the host's devices, listed under the lock. Hubs are shared across processes: run it under the host's
   * link hub lock (host-lock.ts), as their makers do.
   */
  async sweepHubs(o: { readonly only?: ReadonlySet<number>; readonly all?: readonly DeviceInfo[] } = {}): Promise<number[]> {
    const removed: number[] = [];
    for (const [vni, names] of await this.idleHubs(o.all)) {
      if (o.only && !o.only.has(vni)) continue;
      for (const name of names) {
        await this.del(name);
        this.flood.delete(name);
      }
      removed.push(vni);
    }
    return removed;
  }

  private async del(dev: string): Promise<void> {
    await this.run.ip(['link', 'del', dev]).catch((err: unknown) => {
      if (!gone(err)) throw err;
      return '';
    });
  }

  private async delIn(netns: string, dev: string): Promise<void> {
    await this.run.ip(['-n', netns, 'link', 'del', dev]).catch((err: unknown) => {
      if (!gone(err)) throw err;
      return '';
    });
  }
}
