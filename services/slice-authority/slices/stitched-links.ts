/**
 * Reading a CreateSlice's stitched links (links whose two endpoints are at
 * two sites of the request) into each site's part: every site gets its ends
 * (ResourceRequest.stitches) with what the two sites must agree on, chosen
 * here once and recorded with the slice before any site is asked — the VNI
 * and the two ends' addresses. The slice authority picks the VNI (rather
 * than each site offering one and the two being reconciled) because a VXLAN
 * device sends and receives on one VNI: both ends must hold the same one,
 * and one Allocate per site is enough when the sites are told which. A site
 * that already uses it refuses (ALREADY_EXISTS naming the link), and the
 * slice is rolled back like any failed site; the VNI is drawn at random
 * from the upper half of the 24-bit space, where the sites' own sequential
 * VNIs rarely are.
 */
import { randomInt } from 'node:crypto';
import type { StitchEnd } from '../../generated/fedlab/v1/common.js';
import type { CreateSliceRequest } from '../../generated/fedlab/v1/slice_authority.js';
import { checkStitchedLinks } from '../../core/topology/stitched-links.js';

/** Stitched VNIs are drawn from here: above the range sites start their own sequences in most of the time. */
const FIRST = 0x80_0000;
const LAST = 0xff_ffff;

/** The address of endpoint `j` (0 or 1) of stitched link `k`. */
export function stitchAddress(k: number, j: number): string {
  return `10.201.${k}.${j + 1}/24`;
}

/**
 * Checks the stitched links of a request and returns each site's ends (by site domain); INVALID_ARGUMENT naming the
 * field, the link and the endpoint. `vni` picks each link's VNI (random unless a test gives one).
 */
export function stitchEnds(req: CreateSliceRequest, vni: () => number = () => randomInt(FIRST, LAST + 1)): Map<string, StitchEnd[]> {
  const out = new Map<string, StitchEnd[]>();
  const links = req.stitchedLinks?.links ?? [];
  if (links.length === 0) return out;
  checkStitchedLinks(links, req.sites, 'stitched_links');
  const drawn = new Set<number>();
  for (const [k, l] of links.entries()) {
    const [a, b] = l.endpoints as [{ site: string; clientId: string }, { site: string; clientId: string }];
    let id = vni();
    while (drawn.has(id)) id = vni();
    drawn.add(id);
    for (const [j, e] of [a, b].entries()) {
      const peer = j === 0 ? b : a;
      const ends = out.get(e.site) ?? [];
      ends.push({
        link: l.name,
        clientId: e.clientId,
        vni: id,
        address: stitchAddress(k, j),
        peerSite: peer.site,
        peerClientId: peer.clientId,
        bandwidthKbps: l.bandwidthKbps,
        delayMs: l.delayMs,
        lossPercent: l.lossPercent,
      });
      out.set(e.site, ends);
    }
  }
  return out;
}
