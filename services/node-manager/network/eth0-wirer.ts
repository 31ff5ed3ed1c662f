/**
 * A sliver's `eth0`: one end of a veth pair inside the sliver's namespace
 * with the sliver's address and a default route through the node's bridge,
 * the other end (`fv<hash>`, its alias naming the instance, the sliver and
 * its slice mark) a port of the bridge; and the sliver's firewall elements
 * (its slice mark on the bridge, its forwarded port block).
 */
import { FailedPreconditionError } from '../../core/errors.js';
import { NetworkCommandError, type NetCommands } from './net-command.js';
import type { NodeFirewall } from './node-firewall.js';
import { parseVethAlias, sliceHashOf, sliceMarkOf, vethAlias, vethName, type VethLabel } from './net-names.js';
import type { SliverWirer, UnwiringContext, WiringContext } from './sliver-wiring.js';

/** A link as `ip -j link` shows it. */
interface LinkInfo {
  readonly ifname: string;
  readonly ifalias?: string;
  readonly master?: string;
  readonly flags?: readonly string[];
}

/** eth0 on the node's bridge. */
export class Eth0Wirer implements SliverWirer {
  readonly kind = 'eth0';

  constructor(
    private readonly instance: string,
    private readonly firewall: NodeFirewall,
    private readonly run: NetCommands,
  ) {}

  async wire(ctx: WiringContext): Promise<void> {
    const { run, netns, lease, plan, sliver } = ctx;
    const port = vethName(this.instance, sliver.name);
    const links = await this.allLinks();
    const label = this.labelFor(sliver.name, sliver.sliceUrn, links);
    const mine = links.find((l) => l.ifname === port);
    const inside = await run.ipJson<LinkInfo>(['-n', netns, 'link', 'show']).catch(() => [] as LinkInfo[]);
    if (!mine || !inside.some((l) => l.ifname === 'eth0')) {
      // A half-made pair (a crash between the two steps) goes first: the pair is made whole or not at all.
      if (mine)
        await run.ip(['link', 'del', port]).catch((err: unknown) => {
          // The kernel may remove it meanwhile (its peer's namespace went).
          if (!(err instanceof NetworkCommandError && err.notFound)) throw err;
          return '';
        });
      await run.ip(['link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
    }
    await run.ip(['link', 'set', port, 'alias', vethAlias(this.instance, label)]);
    await run.ip(['link', 'set', port, 'master', plan.bridge, 'up']);
    await run.ip(['-n', netns, 'addr', 'replace', `${lease.address}/${lease.prefix}`, 'dev', 'eth0']);
    await run.ip(['-n', netns, 'link', 'set', 'eth0', 'up']);
    await run.ip(['-n', netns, 'route', 'replace', 'default', 'via', lease.gateway, 'dev', 'eth0']);
    await this.firewall.add({ port, sliceMark: label.sliceMark, lease });
  }

  async unwire(ctx: UnwiringContext): Promise<void> {
    const port = vethName(this.instance, ctx.name);
    const blocks = await this.blocksOf(ctx);
    await this.firewall.remove({ ports: [port], forwards: blocks });
    try {
      await ctx.run.ip(['link', 'del', port]);
    } catch (err) {
      if (!(err instanceof NetworkCommandError && err.notFound)) throw err;
    }
  }

  async list(): Promise<string[]> {
    const names = new Set<string>();
    for (const l of await this.allLinks()) {
      const label = parseVethAlias(this.instance, l.ifalias);
      if (label) names.add(label.sliver);
    }
    return [...names];
  }

  /** The forwarded blocks whose address is the sliver's eth0 address (read from its namespace when it still exists). */
  private async blocksOf(ctx: UnwiringContext): Promise<string[]> {
    const addrs = await ctx.run
      .ipJson<{ addr_info?: { family: string; local: string }[] }>(['-n', ctx.netns, 'addr', 'show', 'dev', 'eth0'])
      .catch(() => []);
    const mine = new Set(addrs.flatMap((a) => (a.addr_info ?? []).filter((i) => i.family === 'inet').map((i) => i.local)));
    if (mine.size === 0) return [];
    const { forwards } = await this.firewall.elements();
    return [...forwards].filter(([, addr]) => mine.has(addr)).map(([block]) => block);
  }

  private allLinks(): Promise<LinkInfo[]> {
    return this.run.ipJson<LinkInfo>(['link', 'show', 'type', 'veth']);
  }

  /**
   * The sliver's label: its slice's mark is the one a live port of the same
   * slice carries, else the slice's hash mark, moved on while another slice's
   * port holds it (two slices never share a mark).
   */
  private labelFor(sliver: string, sliceUrn: string, links: readonly LinkInfo[]): VethLabel {
    const sliceHash = sliceHashOf(sliceUrn);
    const all = links.flatMap((l) => {
      const label = parseVethAlias(this.instance, l.ifalias);
      return label ? [label] : [];
    });
    // The sliver's own label first (a re-wire keeps its mark), then a live port of its slice.
    const own = all.find((l) => l.sliver === sliver && l.sliceHash === sliceHash);
    if (own) return own;
    const labels = all.filter((l) => l.sliver !== sliver);
    const same = labels.find((l) => l.sliceHash === sliceHash);
    if (same) return { sliver, sliceMark: same.sliceMark, sliceHash };
    const taken = new Set(labels.map((l) => l.sliceMark));
    let mark = sliceMarkOf(sliceUrn);
    for (let i = 0; taken.has(mark); i++) {
      if (i > 1_000_000) throw new FailedPreconditionError('no free slice mark on the bridge');
      mark = (mark % 0x7fff_fffe) + 1;
    }
    return { sliver, sliceMark: mark, sliceHash };
  }
}
