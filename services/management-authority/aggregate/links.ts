/**
 * A slice's link plan (emulab): the interfaces each sliver gets (eth1, eth2, ...
 * in link order, an address from the link's /24, a MAC from slice, link and
 * endpoint), the checks that the nodes a request landed on can carry its links
 * (an underlay address, the bandwidth, netem for delay and loss), and each
 * sliver's interfaces as CreateSliver carries them: with the link's VNI and the
 * underlay addresses of the other nodes that hold endpoints of it. The node
 * managers make the devices (a veth pair, or VXLAN to the other nodes); the
 * site host makes nothing.
 */
import { createHash } from 'node:crypto';
import { FailedPreconditionError } from '../../core/errors.js';
import type { SliverInterface } from '../../generated/fedlab/v1/common.js';
import type { LiveNode } from '../node-registry.js';
import type { InterfaceRecord, LinkSpec, SliceRecord, SliverRecord } from '../records.js';
import type { AggregateState } from './aggregate-state.js';

/** The address of endpoint `j` of a link using subnet `subnet` (10.200.<subnet>.<j+1>/24). */
export function linkAddress(subnet: number, j: number): string {
  return `10.200.${subnet}.${j + 1}/24`;
}

/** The MAC of an endpoint of a link: locally administered, unicast, the same for the same slice, link and endpoint. */
export function linkMac(sliceUrn: string, link: string, clientId: string): string {
  const h = createHash('sha256').update(`${sliceUrn}\0${link}\0${clientId}`).digest();
  const bytes = [0x02, h[0], h[1], h[2], h[3], h[4]] as number[];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** The interfaces a sliver gets on its slice's links: eth1, eth2, ... in link order. */
export function linkInterfaces(sliceUrn: string, links: readonly LinkSpec[], clientId: string): InterfaceRecord[] {
  const out: InterfaceRecord[] = [];
  for (const l of links) {
    const j = l.endpoints.indexOf(clientId);
    if (j < 0) continue;
    out.push({
      link: l.name,
      name: `eth${out.length + 1}`,
      address: l.stitch?.address ?? linkAddress(l.subnet, j),
      bandwidthKbps: l.bandwidthKbps,
      delayMs: l.delayMs,
      lossPercent: l.lossPercent,
      // The two ends of a stitched link may have one client id (at two sites): the peer site keeps their MACs apart.
      mac: linkMac(sliceUrn, l.name, l.stitch ? `${clientId}@${l.stitch.peerSite}` : clientId),
    });
  }
  return out;
}

/** Why a node cannot hold endpoint `clientId` of link `l`, or undefined when it can. */
function endpointProblem(
  l: LinkSpec,
  clientId: string,
  nodeUrn: string,
  node: LiveNode | undefined,
): { why: string; rule: string } | undefined {
  const at = `link ${l.name}: endpoint ${clientId} is on node ${nodeUrn}`;
  if (!node) return { why: `${at}, which is not enrolled here`, rule: 'node' };
  if (!node.underlayAddress)
    return {
      why: `${at}, which takes no links: it reports no underlay address (its node manager needs a network section with underlay_address); choose other nodes or another site`,
      rule: 'underlay',
    };
  const most = node.linkKbps ?? 0;
  if (l.bandwidthKbps > 0 && most > 0 && l.bandwidthKbps > most)
    return {
      why: `${at}, whose links carry at most ${most} kbit/s, less than the ${l.bandwidthKbps} asked; ask for at most that`,
      rule: 'bandwidth',
    };
  if ((l.delayMs > 0 || l.lossPercent > 0) && !node.record.netemAvailable)
    return {
      why: `${at}, whose kernel has no netem (sch_netem): links there can have bandwidth only — ask without delay_ms and loss_percent, or use another site`,
      rule: 'netem',
    };
  return undefined;
}

/**
 * Checks that the nodes the slivers landed on (`nodeOf`: client id → node) can carry the links: FAILED_PRECONDITION
 * naming the link, the endpoint and the node otherwise. Called inside the batch that would hold them, so nothing is kept.
 */
export function checkLinkPlacement(state: AggregateState, links: readonly LinkSpec[], nodeOf: ReadonlyMap<string, string>): void {
  for (const l of links) {
    for (const e of l.endpoints) {
      const nodeUrn = nodeOf.get(e);
      if (nodeUrn === undefined) continue;
      const p = endpointProblem(l, e, nodeUrn, state.deps.registry.get(nodeUrn));
      if (p) throw new FailedPreconditionError(`${p.why}. Nothing was changed.`, { rule: p.rule, link: l.name, endpoint: e });
    }
  }
}

/**
 * A sliver's interfaces as CreateSliver carries them: its link plan with each link's VNI and the underlay
 * addresses of the other nodes holding endpoints of it (none: every endpoint is on this node, a veth pair).
 * FAILED_PRECONDITION naming the link and endpoint when one cannot be wired now.
 */
export function interfacesToWire(state: AggregateState, slice: SliceRecord, s: SliverRecord): SliverInterface[] {
  // Most slivers are on no link: they need no look at the slice's other slivers (that look, per node call
  // of a provision, was quadratic in the slice's size).
  if (s.interfaces.length === 0) return [];
  const byClient = new Map(state.ledger.sliversOf(slice.urn).map((x) => [x.clientId, x]));
  return s.interfaces.map((i) => {
    const l = slice.links.find((x) => x.name === i.link);
    if (!l || l.vni === undefined)
      throw new FailedPreconditionError(`link ${i.link} of ${s.clientId} has no VNI at this site; allocate again`, {
        rule: 'vni',
        link: i.link,
      });
    const remote = new Set<string>();
    if (l.stitch) {
      if (!l.stitch.peerUnderlay)
        throw new FailedPreconditionError(
          `stitched link ${l.name} (endpoint ${s.clientId}): the stitch point of its peer site ${l.stitch.peerSite} is not known here; Provision takes it in peer_stitch_points`,
          { rule: 'stitch', link: l.name, endpoint: s.clientId },
        );
      remote.add(l.stitch.peerUnderlay);
    }
    for (const e of l.endpoints) {
      if (e === s.clientId) continue;
      const peer = byClient.get(e);
      if (!peer || peer.allocation === 'unallocated')
        throw new FailedPreconditionError(`link ${l.name}: endpoint ${e} is no longer allocated; allocate the slice again`, {
          rule: 'endpoint',
          link: l.name,
          endpoint: e,
        });
      if (peer.nodeUrn === s.nodeUrn) continue;
      const node = state.deps.registry.get(peer.nodeUrn);
      if (!node?.underlayAddress)
        throw new FailedPreconditionError(
          `link ${l.name}: endpoint ${e} is on node ${peer.nodeUrn}, which no longer reports an underlay address; the link cannot reach it`,
          { rule: 'underlay', link: l.name, endpoint: e },
        );
      remote.add(node.underlayAddress);
    }
    return {
      link: i.link,
      name: i.name,
      address: i.address,
      bandwidthKbps: i.bandwidthKbps,
      delayMs: i.delayMs,
      lossPercent: i.lossPercent,
      wiring: {
        mac: i.mac ?? linkMac(slice.urn, i.link, l.stitch ? `${s.clientId}@${l.stitch.peerSite}` : s.clientId),
        vni: l.vni,
        remoteUnderlays: [...remote].sort(),
        applied: [],
      },
    };
  });
}

/** The interfaces with what the node reported it applied to each (by name). */
export function withApplied(interfaces: readonly InterfaceRecord[], reported: readonly SliverInterface[] | undefined): InterfaceRecord[] {
  const byName = new Map((reported ?? []).map((r) => [r.name, r.wiring?.applied ?? []]));
  return interfaces.map((i) => (byName.has(i.name) ? { ...i, applied: [...(byName.get(i.name) as string[])] } : i));
}
