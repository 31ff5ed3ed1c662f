/**
 * The one check of a request's stitched links (links whose two endpoints are
 * nodes of two sites of the request), shared by the slice authority, which
 * turns them into each site's ends, and by a provider, which checks a
 * deployment's before recording it: every error is INVALID_ARGUMENT naming
 * the field, the link and the endpoint.
 */
import { InvalidArgumentError } from '../errors.js';
import type { ResourceRequest, SiteRequest } from '../../generated/fedlab/v1/common.js';
import type { StitchedLink } from '../../generated/fedlab/v1/slice_authority.js';

/** Most stitched links one slice may have (each gets its own /24 in 10.201.0.0/16). */
export const MAX_STITCHED_LINKS = 256;
const LINK_NAME = /^[A-Za-z0-9._-]{1,64}$/;

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
 * Checks `links` against the request's `sites`; `prefix` is the field they came in (`stitched_links` of a
 * CreateSlice, `spec.stitched_links` of a deployment). Throws InvalidArgumentError on the first problem.
 */
export function checkStitchedLinks(links: readonly StitchedLink[], sites: readonly SiteRequest[], prefix: string): void {
  if (links.length > MAX_STITCHED_LINKS)
    throw new InvalidArgumentError(`at most ${MAX_STITCHED_LINKS} stitched links per slice`, { field: `${prefix}.links` });
  const bySite = new Map(sites.map((s) => [s.site, s.request]));
  const names = new Set<string>();
  for (const [k, l] of links.entries()) {
    const f = `${prefix}.links[${k}]`;
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
  }
}
