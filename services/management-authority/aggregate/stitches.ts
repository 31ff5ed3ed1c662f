/**
 * Links stitched to other sites (GENI stitching, simplified). The slice
 * authority names, per site, this site's end of each stitched link
 * (ResourceRequest.stitches): the link, the local endpoint's client id, the
 * VNI it chose and this end's address. Allocate checks them (the site's
 * policy, the endpoint among the request's nodes, the VNI free here) and
 * keeps each as a one-endpoint link of the slice with that VNI, in the same
 * batch as the slivers — so a failed or released Allocate holds no VNI —
 * and answers with this site's stitch points (the endpoint node's underlay
 * address and the VNI). Provision takes the peer sites' points and records
 * the peer's underlay address on the link; the node manager then aims the
 * link's VXLAN device at it.
 */
import { AlreadyExistsError, FailedPreconditionError, InvalidArgumentError } from '../../core/errors.js';
import type { StitchEnd, StitchPoint } from '../../generated/fedlab/v1/common.js';
import { underlayProblem } from '../node-underlay.js';
import type { LinkSpec, SliceRecord, SliverRecord } from '../records.js';
import type { AggregateState } from './aggregate-state.js';
import { MAX_VNI } from './vnis.js';

/** Smallest VNI a stitched link may use (below: the host's own). */
const FIRST_STITCH_VNI = 4096;
/** Most stitched ends one request may hold here (the slice authority asks for at most 256 stitched links a slice). */
export const MAX_STITCH_ENDS = 256;
/** Most link interfaces one sliver may have (the node manager's limit, eth1 to eth32). */
export const MAX_LINKS_PER_ENDPOINT = 32;
const LINK_NAME = /^[A-Za-z0-9._-]{1,64}$/;
const CIDR = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}\/([0-9]|[12]\d|3[0-2])$/;

/** A stitched link as the slice keeps it, before it has a subnet index. */
export type WantedStitch = Omit<LinkSpec, 'subnet'> & { readonly stitch: NonNullable<LinkSpec['stitch']>; readonly vni: number };

/**
 * Checks this site's ends of stitched links (before the ledger): the site's policy takes stitching (any style: a
 * planetlab sliver may hold the end of a link stitched to an emulab site's), each names a
 * client id of the request, a link name no other link of the request has, a VNI in range and a unicast host address
 * (prefix 8 to 30, as the node manager takes it). At most {@link MAX_STITCH_ENDS} ends, and no endpoint with more
 * than {@link MAX_LINKS_PER_ENDPOINT} links in all: a peer cannot hold VNIs here by the thousand, nor allocate what
 * no node can wire. Errors name the link and the endpoint.
 */
export function checkStitches(
  state: AggregateState,
  stitches: readonly StitchEnd[],
  clientIds: ReadonlySet<string>,
  links: readonly { readonly name: string; readonly endpoints: readonly string[] }[],
): WantedStitch[] {
  if (stitches.length === 0) return [];
  if (stitches.length > MAX_STITCH_ENDS)
    throw new InvalidArgumentError(`request.stitches: at most ${MAX_STITCH_ENDS} stitched ends per request (${stitches.length} asked)`, {
      field: 'request.stitches',
    });
  const { settings } = state.deps;
  const first = stitches[0] as StitchEnd;
  if (settings.stitching === false)
    throw new FailedPreconditionError(
      `site ${state.domain} does not stitch links to other sites (its policy: stitching false); link ${first.link} (endpoint ${first.clientId}) cannot be made; ask for it without stitching or at another site`,
      { rule: 'stitching', site: state.domain, link: first.link, endpoint: first.clientId },
    );
  const names = new Set(links.map((l) => l.name));
  const perEndpoint = new Map<string, number>();
  for (const l of links) for (const e of new Set(l.endpoints)) perEndpoint.set(e, (perEndpoint.get(e) ?? 0) + 1);
  return stitches.map((s, i) => {
    const f = `request.stitches[${i}]`;
    const bad = (field: string, why: string): never => {
      throw new InvalidArgumentError(`${f}.${field}: stitched link ${s.link.slice(0, 64)} (endpoint ${s.clientId.slice(0, 80)}) ${why}`, {
        field: `${f}.${field}`,
        link: s.link.slice(0, 64),
        endpoint: s.clientId.slice(0, 80),
      });
    };
    if (!LINK_NAME.test(s.link)) bad('link', 'must be 1 to 64 characters of [A-Za-z0-9._-]');
    if (names.has(s.link)) bad('link', 'has the name of another link of the request');
    names.add(s.link);
    if (!clientIds.has(s.clientId))
      bad('client_id', `names no node of this site's request (its client ids: ${[...clientIds].join(', ').slice(0, 400)})`);
    const count = (perEndpoint.get(s.clientId) ?? 0) + 1;
    perEndpoint.set(s.clientId, count);
    if (count > MAX_LINKS_PER_ENDPOINT)
      bad('client_id', `would hold more than ${MAX_LINKS_PER_ENDPOINT} links (a sliver has eth1 to eth${MAX_LINKS_PER_ENDPOINT})`);
    if (!Number.isSafeInteger(s.vni) || s.vni < FIRST_STITCH_VNI || s.vni > MAX_VNI)
      bad('vni', `must be ${FIRST_STITCH_VNI} to ${MAX_VNI}`);
    if (!CIDR.test(s.address)) bad('address', 'must be an IPv4 address with prefix length (a.b.c.d/n)');
    const addressProblem = linkAddressProblem(s.address);
    if (addressProblem) bad('address', addressProblem);
    if (!s.peerSite || s.peerSite === state.domain) bad('peer_site', "must be another site's domain");
    if (!s.peerClientId) bad('peer_client_id', "must name the peer site's endpoint");
    if (!Number.isSafeInteger(s.bandwidthKbps) || s.bandwidthKbps < 0 || s.bandwidthKbps > settings.maxLinkKbps)
      bad('bandwidth_kbps', `must be 0 (unshaped) to ${settings.maxLinkKbps}`);
    if (!Number.isSafeInteger(s.delayMs) || s.delayMs < 0 || s.delayMs > 10_000) bad('delay_ms', 'must be 0 to 10000');
    if (!Number.isFinite(s.lossPercent) || s.lossPercent < 0 || s.lossPercent > 100) bad('loss_percent', 'must be 0 to 100');
    return {
      name: s.link,
      endpoints: [s.clientId],
      bandwidthKbps: s.bandwidthKbps,
      delayMs: s.delayMs,
      lossPercent: s.lossPercent,
      vni: s.vni,
      stitch: { peerSite: s.peerSite, peerClientId: s.peerClientId, address: s.address },
    };
  });
}

/** Why a stitched end's address (a valid a.b.c.d/n) cannot be a sliver's link address, or undefined when it can. */
export function linkAddressProblem(cidr: string): string | undefined {
  const [addr, len] = cidr.split('/') as [string, string];
  const prefix = Number(len);
  if (prefix < 8 || prefix > 30) return 'must have a prefix length of 8 to 30';
  const problem = underlayProblem(addr);
  if (problem) return problem.replace('other nodes could not reach it', 'not a link address');
  const n = addr.split('.').reduce((v, o) => v * 256 + Number(o), 0);
  const size = 2 ** (32 - prefix);
  if (n % size === 0 || n % size === size - 1) return `must be a host address of its /${prefix}, not its network or broadcast address`;
  return undefined;
}

/** Takes the stitched links' VNIs from `used` (updated), under the ledger's mutex: ALREADY_EXISTS naming the link and endpoint when one is taken here. */
export function takeStitchVnis(state: AggregateState, links: readonly WantedStitch[], used: Set<number>): void {
  for (const l of links) {
    if (used.has(l.vni))
      throw new AlreadyExistsError(
        `stitched link ${l.name} (endpoint ${l.endpoints[0]}): VNI ${l.vni} is already used at site ${state.domain}; the slice authority picks another when the slice is asked for again. Nothing was allocated.`,
        { rule: 'vni', site: state.domain, link: l.name, endpoint: l.endpoints[0] as string, vni: l.vni },
      );
    used.add(l.vni);
  }
}

/** This site's stitch points of a slice's stitched links whose endpoint is among `slivers`. */
export function stitchPointsOf(state: AggregateState, slice: SliceRecord, slivers: readonly SliverRecord[]): StitchPoint[] {
  const byClient = new Map(slivers.map((s) => [s.clientId, s]));
  const out: StitchPoint[] = [];
  for (const l of slice.links) {
    if (!l.stitch || l.vni === undefined) continue;
    const s = byClient.get(l.endpoints[0] as string);
    if (!s) continue;
    out.push({
      site: state.domain,
      link: l.name,
      clientId: s.clientId,
      underlayAddress: state.deps.registry.get(s.nodeUrn)?.underlayAddress ?? '',
      vni: l.vni,
    });
  }
  return out;
}

/**
 * The slice's links with the peer sites' stitch points taken in (their nodes' underlay addresses). A point must
 * match a stitched link of the slice: its peer site and endpoint, and the agreed VNI; its underlay address must be
 * one other nodes can reach (unicast, not loopback, link-local or unspecified) and none of this site's (`ours`: its
 * nodes' underlay addresses) — else the peer would aim a node of ours at ourselves. INVALID_ARGUMENT naming the link
 * and endpoint otherwise. Returns undefined when nothing changes.
 */
export function withPeerPoints(
  slice: SliceRecord,
  points: readonly StitchPoint[],
  ours: ReadonlySet<string> = new Set(),
): LinkSpec[] | undefined {
  if (points.length === 0) return undefined;
  const links = [...slice.links];
  let changed = false;
  for (const [i, p] of points.entries()) {
    const f = `peer_stitch_points[${i}]`;
    const k = links.findIndex((l) => l.name === p.link && l.stitch);
    const l = links[k];
    const why = (field: string, text: string): never => {
      throw new InvalidArgumentError(
        `${f}.${field}: stitched link ${p.link.slice(0, 64)} (peer endpoint ${p.clientId.slice(0, 80)}) ${text}`,
        {
          field: `${f}.${field}`,
          link: p.link.slice(0, 64),
          endpoint: p.clientId.slice(0, 80),
        },
      );
    };
    if (!l?.stitch) return why('link', `is not a stitched link of slice ${slice.urn} here`);
    if (p.site !== l.stitch.peerSite) why('site', `is stitched to site ${l.stitch.peerSite}, not ${p.site.slice(0, 80)}`);
    if (p.clientId !== l.stitch.peerClientId) why('client_id', `has its peer endpoint ${l.stitch.peerClientId} there`);
    if (p.vni !== l.vni) why('vni', `is on VNI ${l.vni} here, not ${p.vni}`);
    const problem = underlayProblem(p.underlayAddress);
    if (problem) why('underlay_address', problem);
    if (ours.has(p.underlayAddress))
      why(
        'underlay_address',
        `${p.underlayAddress} is the underlay address of a node of this site: a link stitched to site ${l.stitch.peerSite} must reach a host of that site`,
      );
    if (l.stitch.peerUnderlay === p.underlayAddress) continue;
    links[k] = { ...l, stitch: { ...l.stitch, peerUnderlay: p.underlayAddress } };
    changed = true;
  }
  return changed ? links : undefined;
}
