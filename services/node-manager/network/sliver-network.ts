/**
 * The sliver network of one node manager: the node's bridge and firewall,
 * and each running container sliver's network namespace with the interfaces
 * its wirers make (eth0 now). runc makes the namespace (with the sliver's user
 * namespace: runc 1.1's exec joins the user namespace first, so a namespace
 * owned by the host's could not be entered); between `runc create` and `runc
 * start` it is named `fl-<instance>-<sliver>` (`ip netns attach`) and wired.
 * The sliver's root can change what is inside it, so every rule that tells
 * slivers apart holds on the node's side: its bridge port only passes IPv4
 * and ARP from the sliver's own address. The network lives as long as the
 * container: a stop or delete removes it. Everything is idempotent; a restart
 * restores the network of running slivers and removes what no record explains.
 */
import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { FailedPreconditionError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { Eth0Wirer } from './eth0-wirer.js';
import { NetCommands, NetworkCommandError } from './net-command.js';
import { netnsName, netnsPath, netnsPrefix, vethName } from './net-names.js';
import type { NetworkConfig } from './network-config.js';
import { leaseOf, resolvePlan, type NetworkPlan, type SliverLease } from './network-plan.js';
import { NodeFirewall } from './node-firewall.js';
import { ensureNodeNetwork, removeNodeNetwork } from './node-network.js';
import type { NetworkSliver, SliverWirer } from './sliver-wiring.js';

/** Kernel settings of every sliver namespace. */
const NETNS_SYSCTLS: Readonly<Record<string, string>> = {
  // ping without raw sockets (ICMP datagram sockets) for every user of the sliver.
  'net.ipv4.ping_group_range': '0 2147483647',
  // IPv4 only: no link-local IPv6 path around the rules.
  'net.ipv6.conf.all.disable_ipv6': '1',
  'net.ipv6.conf.default.disable_ipv6': '1',
};

/** What a restore did. */
export interface NetworkRestore {
  readonly restored: readonly string[];
  readonly removed: readonly string[];
  readonly failed: readonly { readonly name: string; readonly error: string }[];
}

/** Whether two namespace files are the same namespace (false when either is missing). */
async function sameNamespace(a: string, b: string): Promise<boolean> {
  try {
    const [x, y] = await Promise.all([stat(a), stat(b)]);
    return x.ino === y.ino && x.dev === y.dev;
  } catch {
    return false;
  }
}

/** The sliver network of one node manager instance. */
export class SliverNetwork {
  private readonly firewall: NodeFirewall;
  /** The wirers, in wiring order (unwired in reverse). Links come after eth0. */
  readonly wirers: SliverWirer[];

  private constructor(
    readonly plan: NetworkPlan,
    readonly instance: string,
    readonly run: NetCommands,
    private readonly log: Logger,
  ) {
    this.firewall = new NodeFirewall(run, instance);
    this.wirers = [new Eth0Wirer(instance, this.firewall, run)];
  }

  /** Resolves the config section against the host (start-up errors name the field). */
  static async open(config: NetworkConfig, instance: string, log: Logger): Promise<SliverNetwork> {
    const run = new NetCommands(config.command_timeout_ms);
    const plan = await resolvePlan(config, run);
    return new SliverNetwork(plan, instance, run, log);
  }

  /** Adds a wirer (link interfaces), wired after those before it. */
  addWirer(w: SliverWirer): void {
    this.wirers.push(w);
  }

  /** Makes the node's bridge, forwarding and firewall. */
  async init(): Promise<void> {
    await ensureNodeNetwork(this.run, this.plan, this.firewall, this.log);
  }

  /** A sliver's lease (from its id range slot), or why it has none. */
  leaseOf(s: NetworkSliver): SliverLease {
    if (!s.ids) throw new FailedPreconditionError(`sliver ${s.name} has no id range, so no network lease; delete it and create it again`);
    return leaseOf(this.plan, s.ids.slot);
  }

  /**
   * Names the network namespace of the sliver's container (its first process `pid`) and makes (or checks)
   * every wirer's interfaces in it. A name left on an earlier container's namespace is moved first. Idempotent.
   */
  async wire(s: NetworkSliver, pid: number): Promise<SliverLease> {
    const lease = this.leaseOf(s);
    const netns = netnsName(this.instance, s.name);
    try {
      if (!(await sameNamespace(netnsPath(netns), `/proc/${pid}/ns/net`))) {
        await this.dropName(netns);
        await this.run.ip(['netns', 'attach', netns, String(pid)]);
      }
      await this.run.ip(['-n', netns, 'link', 'set', 'lo', 'up']);
      await this.run.sysctlIn(netns, NETNS_SYSCTLS);
      for (const w of this.wirers) await w.wire({ sliver: s, netns, lease, plan: this.plan, run: this.run });
    } catch (err) {
      if (err instanceof NetworkCommandError) {
        throw new FailedPreconditionError(
          `cannot wire the network of sliver ${s.name}: ${err.message}`,
          { rule: 'network' },
          { cause: err },
        );
      }
      throw err;
    }
    return lease;
  }

  /** Removes every wirer's interfaces and rules of the sliver, then its namespace. Idempotent. */
  async unwire(name: string): Promise<void> {
    const netns = netnsName(this.instance, name);
    for (const w of [...this.wirers].reverse()) await w.unwire({ name, netns, run: this.run });
    await this.dropName(netns);
  }

  /** Removes a namespace's name (the namespace itself goes with its last process). */
  private async dropName(netns: string): Promise<void> {
    if (!existsSync(netnsPath(netns))) return;
    try {
      await this.run.ip(['netns', 'del', netns]);
    } catch (err) {
      if (!(err instanceof NetworkCommandError && err.notFound)) throw err;
    }
  }

  /** Names of slivers with anything on the node: a namespace, a device, a rule. */
  async list(): Promise<string[]> {
    const names = new Set<string>(await this.namespaces());
    for (const w of this.wirers) for (const n of await w.list()) names.add(n);
    return [...names];
  }

  /** Slivers whose namespace exists. */
  private async namespaces(): Promise<string[]> {
    const prefix = netnsPrefix(this.instance);
    const entries = existsSync('/run/netns') ? await readdir('/run/netns') : [];
    return entries.filter((e) => e.startsWith(prefix)).map((e) => e.slice(prefix.length));
  }

  /**
   * At start, after the slivers are reconciled: re-wires every running
   * sliver's network (what a crash left half-made is finished) and removes
   * namespaces, devices and firewall elements no running sliver explains.
   */
  async restore(running: readonly { readonly sliver: NetworkSliver; readonly pid: number }[]): Promise<NetworkRestore> {
    const live = running.map((r) => r.sliver);
    const removed: string[] = [];
    const liveNames = new Set(live.map((s) => s.name));
    for (const name of await this.list()) {
      if (liveNames.has(name)) continue;
      await this.unwire(name);
      removed.push(name);
    }
    const leases = new Map<string, SliverLease>();
    const failed: { name: string; error: string }[] = [];
    for (const s of live) {
      try {
        leases.set(s.name, this.leaseOf(s));
      } catch (err) {
        failed.push({ name: s.name, error: (err as Error).message });
      }
    }
    // Elements no live sliver explains go before any is added again: a stale block would clash with its successor.
    const { ports, forwards } = await this.firewall.elements();
    const livePorts = new Set(live.map((s) => vethName(this.instance, s.name)));
    const liveBlocks = new Map([...leases.values()].map((l) => [`${l.firstPort}-${l.lastPort}`, l.address]));
    await this.firewall.remove({
      ports: [...ports.keys()].filter((p) => !livePorts.has(p)),
      forwards: [...forwards].filter(([block, addr]) => liveBlocks.get(block) !== addr).map(([block]) => block),
    });
    const restored: string[] = [];
    for (const { sliver: s, pid } of running) {
      if (!leases.has(s.name)) continue;
      try {
        await this.wire(s, pid);
        restored.push(s.name);
      } catch (err) {
        failed.push({ name: s.name, error: (err as Error).message });
      }
    }
    return { restored, removed, failed };
  }

  /** Removes every sliver's network, the firewall tables and the bridge (uninstall, tests). */
  async purge(): Promise<void> {
    for (const name of await this.list()) await this.unwire(name);
    await removeNodeNetwork(this.run, this.plan, this.firewall);
  }
}
