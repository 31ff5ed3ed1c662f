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
import { InvalidArgumentError } from '../../core/errors.js';
import type { ResourceRequest, StitchEnd } from '../../generated/fedlab/v1/common.js';
import type { CreateSliceRequest } from '../../generated/fedlab/v1/slice_authority.js';

/** Most stitched links one slice may have (each gets its own /24 in 10.201.0.0/16). */
export const MAX_STITCHED_LINKS = 256;
const LINK_NAME = /^[A-Za-z0-9._-]{1,64}$/;
/** Stitched VNIs are drawn from here: above the range sites start their own sequences in most of the time. */
const FIRST = 0x80_0000;
const LAST = 0xff_ffff;

/** The address of endpoint `j` (0 or 1) of stitched link `k`. */
export function stitchAddress(k: number, j: number): string {
  return `10.201.${k}.${j + 1}/24`;
}

/** The client ids a site's request names (nodes.client_ids, or the request document's nodes). */
function clientIdsOf(request: ResourceRequest | undefined): Set<string> {
  if (!request) return new Set();
  if (request.requestDocument) {
    try {
      const doc = JSON.parse(request.requestDocument) as { nodes?: { client_id?: unknown }[] };
      return new Set((doc.nodes ?? []).map((n) => n?.client_id).filter((c): c is string => typeof c === 'string'));
    } catch {
      return new Set();
    }
  }
  return new Set(request.nodes?.clientIds ?? []);
}

/**
 * Checks the stitched links of a request and returns each site's ends (by site domain); INVALID_ARGUMENT naming the
 * field, the link and the endpoint. `vni` picks each link's VNI (random unless a test gives one).
 */
export function stitchEnds(req: CreateSliceRequest, vni: () => number = () => randomInt(FIRST, LAST + 1)): Map<string, StitchEnd[]> {
  const out = new Map<string, StitchEnd[]>();
  const links = req.stitchedLinks?.links ?? [];
  if (links.length === 0) return out;
  if (links.length > MAX_STITCHED_LINKS)
    throw new InvalidArgumentError(`at most ${MAX_STITCHED_LINKS} stitched links per slice`, { field: 'stitched_links.links' });
  const bySite = new Map(req.sites.map((s) => [s.site, s.request]));
  const names = new Set<string>();
  const drawn = new Set<number>();
  for (const [k, l] of links.entries()) {
    const f = `stitched_links.links[${k}]`;
    const bad = (field: string, why: string, endpoint?: string): never => {
      throw new InvalidArgumentError(`${f}${field ? `.${field}` : ''}: stitched link ${l.name.slice(0, 64)} ${why}`, {
        field: `${f}${field ? `.${field}` : ''}`,
        link: l.name.slice(0, 64),
        ...(endpoint !== undefined ? { endpoint: endpoint.slice(0, 80) } : {}),
      });
    };
    if (!LINK_NAME.test(l.name)) bad('name', 'must be 1 to 64 characters of [A-Za-z0-9._-]');
    if (names.has(l.name)) bad('name', 'is named twice');
    names.add(l.name);
    if (l.endpoints.length !== 2) bad('endpoints', `must have exactly two endpoints (it has ${l.endpoints.length}), at two sites`);
    const [a, b] = l.endpoints as [{ site: string; clientId: string }, { site: string; clientId: string }];
    if (a.site === b.site) bad('endpoints', `joins two nodes of one site (${a.site}); ask that site for an ordinary link`);
    for (const [j, e] of l.endpoints.entries()) {
      const at = `endpoints[${j}]`;
      const request = bySite.get(e.site);
      if (!bySite.has(e.site))
        bad(`${at}.site`, `(endpoint ${e.clientId}) is at ${e.site.slice(0, 80)}, which is not a site of this request`, e.clientId);
      if (!clientIdsOf(request).has(e.clientId))
        bad(
          `${at}.client_id`,
          `(endpoint ${e.clientId.slice(0, 80)}) names no node of the request to ${e.site}: name it in that site's nodes.client_ids`,
          e.clientId,
        );
      if (request?.links.some((x) => x.name === l.name)) bad('name', `is also the name of a link of the request to ${e.site}`);
    }
    if (!Number.isSafeInteger(l.bandwidthKbps) || l.bandwidthKbps < 0) bad('bandwidth_kbps', 'must be 0 (unshaped) or more');
    if (!Number.isSafeInteger(l.delayMs) || l.delayMs < 0 || l.delayMs > 10_000) bad('delay_ms', 'must be 0 to 10000');
    if (!Number.isFinite(l.lossPercent) || l.lossPercent < 0 || l.lossPercent > 100) bad('loss_percent', 'must be 0 to 100');
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
