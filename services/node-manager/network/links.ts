/**
 * Emulab links on the node: each interface CreateSliver carries (eth1, eth2,
 * ... with the aggregate's MAC, address, shaping, the link's VNI and the
 * underlay addresses of the far nodes) is made inside the sliver's network
 * namespace by a {@link SliverWirer} after eth0:
 *
 * - every far endpoint on this node (no far underlay): a veth pair straight
 *   between the two slivers' namespaces, made by whichever of them is wired
 *   second (the first waits for its peer);
 * - the link's only endpoint on this host: the interface is a VXLAN device
 *   towards the far nodes' hosts, made into the sliver's namespace;
 * - otherwise the link's hub on this host — a bridge with a VXLAN device on
 *   it towards the far hosts — and a veth from the sliver into it (the
 *   endpoints on this host, of any node manager of the site, share the hub);
 * - every far end another node manager on this very host (of any site,
 *   network.host_underlays, as `fedlab up` runs them): a host-wide hub of the
 *   VNI — a bridge and no VXLAN device, since the kernel takes a VNI once per
 *   UDP port and namespace — and a veth from the sliver into it.
 *
 * Hubs are shared with other processes on the host, so making one and putting
 * a port on it, and removing one no port is on, happen under the host's link
 * hub lock (host-lock.ts): no sweep deletes a hub between its make and its port.
 *
 * Before any VXLAN device is made, the node's firewall is told which far
 * hosts each VNI may come from and go to (vxlan-filter.ts); it forgets a VNI
 * once no sliver of this node manager holds it.
 *
 * Each end's egress is shaped (link-shaping.ts). The interfaces are checked at
 * CreateSliver (before anything is written) and kept in the sliver's record,
 * with what will be applied; the devices come and go with the sliver's
 * network (its starts, stops, deletes, and a restart's restore), and a hub no
 * sliver uses any more is removed.
 */
import { existsSync } from 'node:fs';
import { FailedPreconditionError, InvalidArgumentError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { Mutex } from '../../core/mutex.js';
import type { SliverInterface } from '../../generated/fedlab/v1/common.js';
import type { SliverDriver } from '../drivers/driver.js';
import { contains, formatCidr, ipv4ToNumber, isIpv4, overlaps, parseCidr } from './ipv4.js';
import { LinkDevices, type InterfaceEnd } from './link-devices.js';
import { probeNetem, shapingPlan, TcCommands } from './link-shaping.js';
import type { NetCommands } from './net-command.js';
import { HostLock } from './host-lock.js';
import { HOST_SCOPE, linkScope } from './link-names.js';
import { netnsName, netnsPath } from './net-names.js';
import type { NetworkPlan } from './network-plan.js';
import { NetworkedDriver } from './networked-driver.js';
import type { SliverWirer, UnwiringContext, WiringContext } from './sliver-wiring.js';
import { VxlanFilter } from './vxlan-filter.js';

/** Most link interfaces one sliver may have. */
export const MAX_INTERFACES = 32;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** What the links read of the node's slivers (their records). */
export interface LinkRecords {
  get(urn: string): { readonly interfaces: readonly SliverInterface[] } | undefined;
  list(): Iterable<{ readonly name: string; readonly urn: string; readonly interfaces: readonly SliverInterface[] }>;
}

/** Link interfaces of this node's slivers. */
export class LinkWirer implements SliverWirer {
  readonly kind = 'links';
  private readonly devices: LinkDevices;
  /** Hubs shared with other node managers of any site on this host (network.host_underlays). */
  private readonly hostHubs: LinkDevices;
  private readonly filter: VxlanFilter;
  /** Link work is serialised: two slivers of one link are wired one after the other. */
  private readonly mutex = new Mutex();

  constructor(
    private readonly instance: string,
    /** The site's scope (link-names.ts), from its management authority's URN. */
    scope: string,
    readonly plan: NetworkPlan,
    private readonly records: LinkRecords,
    readonly netem: boolean,
    readonly tools: TcCommands,
    run: NetCommands,
    /** Held while hubs are made, joined or removed (shared with every node manager on the host). */
    private readonly hubLock = new HostLock(),
  ) {
    this.devices = new LinkDevices(instance, scope, run, tools);
    this.hostHubs = new LinkDevices(instance, HOST_SCOPE, run, tools);
    this.filter = new VxlanFilter(run, instance);
  }

  /**
   * Checks a CreateSliver's interfaces against this node: well formed, wirable here (an underlay address for far
   * endpoints, netem for delay and loss, no clash with the node's own networks); returns them with what will be applied.
   */
  check(interfaces: readonly SliverInterface[]): SliverInterface[] {
    const out = checkInterfaceFields(interfaces);
    return out.map((i) => {
      const w = i.wiring as NonNullable<SliverInterface['wiring']>;
      const at = `interfaces ${i.name} (link ${i.link})`;
      if (w.remoteUnderlays.length > 0 && !this.plan.underlayAddress)
        throw new FailedPreconditionError(
          `${at}: this node has no underlay address (network.underlay_address), so it reaches no other node`,
          {
            rule: 'underlay',
            link: i.link,
          },
        );
      const onHost = w.remoteUnderlays.filter((r) => this.onThisHost(r));
      if (onHost.length > 0 && onHost.length < w.remoteUnderlays.length)
        throw new FailedPreconditionError(
          `${at}: far underlays ${onHost.join(', ')} are node managers on this host (network.host_underlays) and the others are not; a link joins either this host's hub or VXLAN, not both`,
          { rule: 'host_underlay', link: i.link },
        );
      const allowed = this.plan.peerUnderlays;
      if (allowed) {
        const nets = this.plan.underlayNetwork ? [this.plan.underlayNetwork, ...allowed] : allowed;
        const outside = w.remoteUnderlays.find((r) => !nets.some((n) => contains(n, ipv4ToNumber(r))));
        if (outside)
          throw new FailedPreconditionError(
            `${at}: far underlay ${outside} is neither in this node's underlay network nor in network.peer_underlays (${allowed.map(formatCidr).join(', ')}); this node's owner does not let links reach it`,
            { rule: 'peer_underlay', link: i.link },
          );
      }
      if (i.address) {
        const net = parseCidr(i.address, false);
        for (const [what, own] of [
          ['sliver subnet', this.plan.subnet],
          ['underlay network', this.plan.underlayNetwork],
        ] as const) {
          if (own && overlaps(net, own))
            throw new FailedPreconditionError(
              `${at}: address ${i.address} clashes with this node's ${what}; the link needs another subnet`,
              {
                rule: 'subnet',
                link: i.link,
              },
            );
        }
      }
      const plan = shapingPlan(i.name, i, this.netem, i.link);
      return { ...i, wiring: { ...w, applied: [...plan.applied] } };
    });
  }

  wire(ctx: WiringContext): Promise<void> {
    const mine = this.records.get(ctx.sliver.urn)?.interfaces ?? [];
    if (mine.length === 0) return Promise.resolve();
    return this.mutex.run(async () => {
      // The filter first: a VXLAN device never exists here while its VNI is open to any host.
      await this.filter.sync(this.vxlanPeers());
      const far = mine.some((i) => (i.wiring?.remoteUnderlays.length ?? 0) > 0);
      if (far) await this.hubLock.run(() => this.wireInterfaces(ctx, mine, far));
      else await this.wireInterfaces(ctx, mine, far);
    });
  }

  /** Makes a sliver's interfaces (`far`: some has a far end, and the hub lock is held: see the module's comment). */
  private async wireInterfaces(ctx: WiringContext, mine: readonly SliverInterface[], far: boolean): Promise<void> {
    // Listed under the lock: a hub seen here stays until this wiring has its port on it.
    const host = far ? await this.devices.hostDevices() : [];
    for (const i of mine) {
      const w = i.wiring;
      if (!w) continue;
      const end = this.endOf(ctx.netns, i);
      const underlay = this.plan.underlayAddress as string;
      if (w.remoteUnderlays.length > 0 && w.remoteUnderlays.every((r) => this.onThisHost(r))) {
        // Far ends of other node managers on this host: the host-wide hub of the VNI, no VXLAN device.
        const mtu = await this.hostHubs.ensureHub(w.vni, underlay, [], host);
        await this.hostHubs.attach(w.vni, ctx.sliver.name, end, mtu, host);
      } else if (w.remoteUnderlays.length > 0 && this.alone(ctx.sliver.urn, w.vni, w.remoteUnderlays, underlay)) {
        // The link's one endpoint on this host: the interface is the VXLAN device itself.
        await this.devices.direct(w.vni, underlay, w.remoteUnderlays, end);
      } else if (w.remoteUnderlays.length > 0) {
        const mtu = await this.devices.ensureHub(w.vni, underlay, w.remoteUnderlays, host);
        await this.devices.attach(w.vni, ctx.sliver.name, end, mtu, host);
      } else {
        const peer = this.localPeer(ctx.sliver.urn, w.vni);
        // The peer not running yet: its own wiring makes the pair.
        if (peer) await this.devices.pair(end, peer);
      }
    }
  }

  unwire(ctx: UnwiringContext): Promise<void> {
    return this.mutex.run(async () => {
      // Its ends inside its namespace go with the namespace (a veth pair's far end with them); the node-side ports here.
      await this.devices.detach(ctx.name);
      await this.sweepIdle();
      await this.filter.sync(this.vxlanPeers(ctx.name));
    });
  }

  async list(): Promise<string[]> {
    const names = new Set<string>();
    for (const d of await this.devices.nodeDevices()) if (d.label.kind === 'port') names.add(d.label.sliver);
    return [...names];
  }

  /** Removes hubs no sliver's port is on (after a restore). */
  sweep(): Promise<number[]> {
    return this.mutex.run(async () => {
      const removed = await this.sweepIdle();
      await this.filter.sync(this.vxlanPeers());
      return removed;
    });
  }

  /**
   * Removes this site's and the host's hubs no port is on; returns the site's VNIs removed. Only takes the hub lock
   * when one looks idle (most deletes have no link at all), and looks again under it.
   */
  private async sweepIdle(): Promise<number[]> {
    const host = await this.devices.hostDevices();
    if ((await this.devices.idleHubs(host)).size === 0 && (await this.hostHubs.idleHubs(host)).size === 0) return [];
    return this.hubLock.run(async () => {
      // Listed again under the lock, once for both scopes.
      const now = await this.devices.hostDevices();
      const removed = await this.devices.sweepHubs({ all: now });
      await this.hostHubs.sweepHubs({ all: now });
      return removed;
    });
  }

  /** The far hosts of each VNI this node manager's slivers' VXLAN interfaces use (leaving out sliver `except`). */
  private vxlanPeers(except?: string): Map<number, Set<string>> {
    const own = this.plan.underlayAddress;
    const out = new Map<number, Set<string>>();
    for (const r of this.records.list()) {
      if (r.name === except) continue;
      for (const i of r.interfaces) {
        // Ends on this host's hubs speak no VXLAN.
        const far = (i.wiring?.remoteUnderlays ?? []).filter((a) => a !== own && !this.onThisHost(a));
        if (!i.wiring || far.length === 0) continue;
        const set = out.get(i.wiring.vni) ?? new Set<string>();
        for (const a of far) set.add(a);
        out.set(i.wiring.vni, set);
      }
    }
    return out;
  }

  /** Whether a far underlay is another node manager's on this host (network.host_underlays). */
  private onThisHost(underlay: string): boolean {
    return underlay !== this.plan.underlayAddress && (this.plan.hostUnderlays ?? []).includes(underlay);
  }

  private endOf(netns: string, i: SliverInterface): InterfaceEnd {
    return {
      netns,
      ifname: i.name,
      mac: i.wiring?.mac ?? '',
      address: i.address,
      shaping: shapingPlan(i.name, i, this.netem, i.link),
    };
  }

  /**
   * Whether the sliver is the link's only endpoint on this host: no far endpoint has this host's underlay address
   * (another node manager of the site here) and no other sliver of this node manager is on the link.
   */
  private alone(urn: string, vni: number, remotes: readonly string[], underlay: string): boolean {
    if (remotes.includes(underlay)) return false;
    for (const r of this.records.list()) if (r.urn !== urn && r.interfaces.some((i) => i.wiring?.vni === vni)) return false;
    return true;
  }

  /** The end of the other sliver on this node that holds the link `vni` and whose namespace exists now. */
  private localPeer(urn: string, vni: number): InterfaceEnd | undefined {
    for (const r of this.records.list()) {
      if (r.urn === urn) continue;
      const i = r.interfaces.find((x) => x.wiring?.vni === vni && x.wiring.remoteUnderlays.length === 0);
      if (!i) continue;
      const ns = netnsName(this.instance, r.name);
      if (existsSync(netnsPath(ns))) return this.endOf(ns, i);
    }
    return undefined;
  }
}

/** Whether an IPv4 address could be another host's underlay: not unspecified, loopback, link-local, multicast or broadcast. */
function isHostUnicast(addr: string): boolean {
  const [a, b] = addr.split('.').map(Number) as [number, number];
  return a !== 0 && a !== 127 && a < 224 && !(a === 169 && b === 254);
}

/** Checks the fields of a CreateSliver's interfaces (INVALID_ARGUMENT naming the field); returns copies. */
export function checkInterfaceFields(interfaces: readonly SliverInterface[]): SliverInterface[] {
  if (interfaces.length > MAX_INTERFACES)
    throw new InvalidArgumentError(`at most ${MAX_INTERFACES} interfaces per sliver`, { field: 'interfaces' });
  const names = new Set<string>();
  const vnis = new Set<number>();
  return interfaces.map((i, k) => {
    const f = `interfaces[${k}]`;
    const bad = (field: string, why: string): never => {
      throw new InvalidArgumentError(`${f}.${field} (link ${String(i.link).slice(0, 64)}): ${why}`, { field: `${f}.${field}` });
    };
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(i.link)) bad('link', 'must be 1 to 64 characters of [A-Za-z0-9._-]');
    if (!/^eth([1-9]\d?)$/.test(i.name)) bad('name', 'must be eth1 to eth99 (eth0 is the sliver network)');
    if (names.has(i.name)) bad('name', `${i.name} is named twice`);
    names.add(i.name);
    if (i.address !== '') {
      try {
        const net = parseCidr(i.address, false);
        if (net.prefix < 8 || net.prefix > 30) bad('address', 'must have a prefix length of 8 to 30');
      } catch {
        bad('address', 'must be an IPv4 address with prefix length (a.b.c.d/len)');
      }
    }
    if (!Number.isSafeInteger(i.bandwidthKbps) || i.bandwidthKbps < 0 || i.bandwidthKbps > 100_000_000)
      bad('bandwidth_kbps', 'must be 0 (unshaped) to 100000000');
    if (!Number.isSafeInteger(i.delayMs) || i.delayMs < 0 || i.delayMs > 10_000) bad('delay_ms', 'must be 0 to 10000');
    if (!Number.isFinite(i.lossPercent) || i.lossPercent < 0 || i.lossPercent > 100) bad('loss_percent', 'must be 0 to 100');
    const w = i.wiring;
    if (!w) return bad('wiring', 'must say how the interface is made (mac, vni, remote_underlays)');
    if (!MAC.test(w.mac) || (parseInt(w.mac.slice(0, 2), 16) & 0x03) !== 0x02)
      bad('wiring.mac', 'must be a locally administered unicast MAC (aa:bb:cc:dd:ee:ff, lower case)');
    if (!Number.isSafeInteger(w.vni) || w.vni < 1 || w.vni > 0xff_ffff) bad('wiring.vni', 'must be 1 to 16777215');
    if (vnis.has(w.vni)) bad('wiring.vni', `${w.vni} is used by two interfaces`);
    vnis.add(w.vni);
    if (w.remoteUnderlays.length > 64) bad('wiring.remote_underlays', 'at most 64');
    for (const r of w.remoteUnderlays) {
      if (!isIpv4(r)) bad('wiring.remote_underlays', `${JSON.stringify(r.slice(0, 40))} is not an IPv4 address`);
      if (!isHostUnicast(r))
        bad(
          'wiring.remote_underlays',
          `${r} is not a unicast address another host could hold (loopback, link-local, multicast or broadcast)`,
        );
    }
    if (new Set(w.remoteUnderlays).size !== w.remoteUnderlays.length) bad('wiring.remote_underlays', 'names an address twice');
    return { ...i, wiring: { mac: w.mac, vni: w.vni, remoteUnderlays: [...w.remoteUnderlays], applied: [] } };
  });
}

/** The link wirer of a driver, if its slivers have links. */
export function linksOf(driver: SliverDriver): LinkWirer | undefined {
  return driver instanceof NetworkedDriver
    ? (driver.network.wirers.find((w) => w instanceof LinkWirer) as LinkWirer | undefined)
    : undefined;
}

/**
 * Checks a CreateSliver's interfaces for `driver`'s node: none is always fine; some need the sliver network's links
 * (FAILED_PRECONDITION otherwise). Returns them with what will be applied to each.
 */
export function checkInterfaces(interfaces: readonly SliverInterface[], driver: SliverDriver): SliverInterface[] {
  if (interfaces.length === 0) return [];
  const links = linksOf(driver);
  if (!links)
    throw new FailedPreconditionError(
      `this node manager does not wire link interfaces (driver ${driver.kind}${driver instanceof NetworkedDriver ? '' : ', no network section'}); send the sliver without interfaces or use a node with the sliver network`,
      { field: 'interfaces' },
    );
  return links.check(interfaces);
}

/**
 * Adds links to the sliver network of `driver` (when it has one): probes netem once and wires after eth0. `siteUrn`
 * (the management authority's) scopes the hubs this node shares with the site's other node managers on the host.
 */
export async function enableLinks(
  driver: SliverDriver,
  records: LinkRecords,
  siteUrn: string,
  log: Logger,
): Promise<LinkWirer | undefined> {
  if (!(driver instanceof NetworkedDriver)) return undefined;
  const { network } = driver;
  const tools = new TcCommands(network.run.timeoutMs);
  const netem = await probeNetem(network.run, tools);
  const wirer = new LinkWirer(network.instance, linkScope(siteUrn), network.plan, records, netem, tools, network.run);
  network.addWirer(wirer);
  log.info({ underlay: network.plan.underlayAddress ?? null, netem }, 'links on: veth pairs on this node, VXLAN to other nodes');
  return wirer;
}
