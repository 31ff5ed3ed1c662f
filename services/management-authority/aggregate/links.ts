/**
 * A slice's network links on the site host (emulab): the interfaces and the
 * host namespace each sliver gets (its link plan), and wiring the links whose
 * endpoints all have a namespace (veth pairs, addresses, tc shaping).
 */
import { FedlabError } from '../../core/errors.js';
import { linkAddress } from '../netlab.js';
import type { InterfaceRecord, LinkSpec, SliceRecord, SliverRecord } from '../records.js';
import type { AggregateState } from './aggregate-state.js';

/** The interfaces a sliver gets on its slice's links: eth1, eth2, ... in link order. */
export function linkInterfaces(links: readonly LinkSpec[], clientId: string): InterfaceRecord[] {
  const out: InterfaceRecord[] = [];
  for (const l of links) {
    const j = l.endpoints.indexOf(clientId);
    if (j < 0) continue;
    out.push({
      link: l.name,
      name: `eth${out.length + 1}`,
      address: linkAddress(l.subnet, j),
      bandwidthKbps: l.bandwidthKbps,
      delayMs: l.delayMs,
      lossPercent: l.lossPercent,
    });
  }
  return out;
}

/**
 * A sliver's link plan: its interfaces and, when it is on a link, the name of its host namespace. A
 * node on no link gets no namespace: it would hold only a loopback, and making one costs the site
 * host about 4 ms of kernel time (a slice of 1,000 unlinked nodes would pay seconds for nothing).
 * Links join slivers of one request only, so a sliver never joins a link after it was made.
 */
export function linkPlan(
  state: AggregateState,
  wantNetns: boolean,
  links: readonly LinkSpec[],
  clientId: string,
): { interfaces: InterfaceRecord[]; netns: string | undefined } {
  const interfaces = linkInterfaces(links, clientId);
  // `netns: undefined` also clears a name left from an earlier instantiation.
  return { interfaces, netns: wantNetns && interfaces.length > 0 ? state.deps.netlab.newName() : undefined };
}

/** Wires the links that newly instantiated slivers (their namespaces made) complete. Returns why it failed, or undefined. */
export async function wireLinks(state: AggregateState, slice: SliceRecord, fresh: readonly SliverRecord[]): Promise<string | undefined> {
  const { ledger, deps } = state;
  try {
    const freshIds = new Set(fresh.map((s) => s.clientId));
    const byClient = new Map(ledger.sliversOf(slice.urn).map((s) => [s.clientId, s]));
    for (const [index, l] of slice.links.entries()) {
      if (!l.endpoints.some((e) => freshIds.has(e))) continue;
      const ends = l.endpoints.map((e) => byClient.get(e));
      // A link is wired once all its endpoints have a namespace (now, or from before).
      if (ends.some((s) => !s?.netns || (s.allocation !== 'provisioned' && !freshIds.has(s.clientId)))) continue;
      await deps.netlab.createLink({
        name: l.name,
        index,
        bandwidthKbps: l.bandwidthKbps,
        delayMs: l.delayMs,
        lossPercent: l.lossPercent,
        endpoints: ends.map((s) => {
          const iface = (s as SliverRecord).interfaces.find((i) => i.link === l.name) as InterfaceRecord;
          return { netns: (s as SliverRecord).netns as string, ifname: iface.name, address: iface.address };
        }),
      });
    }
    return undefined;
  } catch (err) {
    const why = err instanceof FedlabError ? err.message : `could not wire the slice's links on the site host: ${(err as Error).message}`;
    deps.log.warn({ slice: slice.urn, err: (err as Error).message }, 'link wiring failed');
    return why;
  }
}
