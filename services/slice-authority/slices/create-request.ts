/**
 * Reading and checking a CreateSlice request before anything is recorded or
 * asked: the request id, name, mode, each site's part (a known site, nodes of
 * its domain or a count, within the limits) and what it counts against the
 * provider's quotas, the expiry, and the users and their SSH keys. Every
 * error names its field.
 */
import { InvalidArgumentError } from '../../core/errors.js';
import { checkSliceUsers, type SliceUserRecord } from '../../core/identity/ssh-keys.js';
import { isValidName } from '../../core/identity/urn.js';
import { requestId, text, urnField } from '../../core/validate.js';
import { ResourceRequest, SiteStyle, SliceMode, type StitchEnd } from '../../generated/fedlab/v1/common.js';
import type { CreateSliceRequest } from '../../generated/fedlab/v1/slice_authority.js';
import { addUse, NO_USE, type SiteRecord, type Use } from '../records.js';
import type { SliceBookState } from './book-state.js';
import { stitchEnds } from './stitched-links.js';

/** A checked CreateSlice request. */
export interface CheckedCreate {
  readonly requestId: string;
  readonly description: string;
  /** Each site's part, nothing asked yet. */
  readonly sites: SiteRecord[];
  readonly expiresAt: number;
  /** The slice's users, checked and normalised. */
  readonly users: SliceUserRecord[];
}

/** Checks a CreateSlice request at time `now`; throws INVALID_ARGUMENT naming the field. */
export function checkCreateRequest(book: SliceBookState, req: CreateSliceRequest, now: number): CheckedCreate {
  const { limits } = book.deps;
  const rid = requestId(req.requestId);
  if (!isValidName(req.name)) throw new InvalidArgumentError('name must match [a-z0-9][a-z0-9._-]{0,62}', { field: 'name' });
  const description = text('description', req.description, 1000);
  if (![SliceMode.SLICE_MODE_UNSPECIFIED, SliceMode.SLICE_MODE_ALL_OR_NOTHING, SliceMode.SLICE_MODE_BEST_EFFORT].includes(req.mode)) {
    throw new InvalidArgumentError('mode must be ALL_OR_NOTHING or BEST_EFFORT', { field: 'mode' });
  }
  if (req.sites.length === 0) throw new InvalidArgumentError('sites is empty: ask at least one site for nodes', { field: 'sites' });
  if (req.sites.length > limits.max_sites_per_slice)
    throw new InvalidArgumentError(`at most ${limits.max_sites_per_slice} sites per slice`, { field: 'sites' });
  const seen = new Set<string>();
  for (const [i, s] of req.sites.entries()) {
    if (seen.has(s.site))
      throw new InvalidArgumentError(`sites[${i}]: site ${s.site} appears twice; ask each site once`, { field: 'sites' });
    seen.add(s.site);
  }
  // Stitched links: each site's ends, with the VNI and addresses both ends agree on, go into its request.
  const ends = stitchEnds(req);
  const sites = req.sites.map((s, i) => siteRecord(book, i, s.site, s.request, ends.get(s.site)));
  const users = checkSliceUsers(req.users, 'users');
  const maxAt = now + limits.max_slice_lifetime_s * 1000;
  let expiresAt = now + limits.default_slice_lifetime_s * 1000;
  if (req.expiresAt) {
    expiresAt = req.expiresAt.getTime();
    if (!Number.isFinite(expiresAt) || expiresAt <= now)
      throw new InvalidArgumentError('expires_at must be in the future', { field: 'expires_at' });
    if (expiresAt > maxAt) {
      throw new InvalidArgumentError(
        `expires_at is past this slice authority's maximum slice lifetime (${limits.max_slice_lifetime_s} s, i.e. ${new Date(maxAt).toISOString()}); ask for an earlier expiry`,
        {
          field: 'expires_at',
        },
      );
    }
  }
  return { requestId: rid, description, sites, expiresAt, users };
}

/** Reads and checks one site's part of a request; returns its record (nothing asked yet) and what it counts against quotas. */
function siteRecord(
  book: SliceBookState,
  i: number,
  site: string,
  request: ResourceRequest | undefined,
  stitches: StitchEnd[] | undefined,
): SiteRecord {
  const field = `sites[${i}]`;
  const s = book.deps.sites.get(site);
  if (!s) {
    const known = book.deps.sites.domains();
    throw new InvalidArgumentError(
      `${field}.site ${JSON.stringify(site.slice(0, 80))} is not a site of this slice authority; its sites are ${known.join(', ') || 'none'}`,
      { field: `${field}.site` },
    );
  }
  if (!request)
    throw new InvalidArgumentError(`${field}.request is required: the nodes (node_urns or count) and resources wanted at ${site}`, {
      field: `${field}.request`,
    });
  const defaults = book.deps.quotaDefaults;
  let slivers: number;
  const per = {
    cpuMillis: request.resources?.cpuMillis || defaults.cpu_millis,
    memMb: request.resources?.memMb || defaults.mem_mb,
    diskMb: request.resources?.diskMb || defaults.disk_mb,
  };
  let perNode: { cpuMillis: number; memMb: number; diskMb: number }[] | undefined;
  if (request.requestDocument) {
    let doc: unknown;
    try {
      doc = JSON.parse(request.requestDocument);
    } catch {
      throw new InvalidArgumentError(`${field}.request.request_document is not JSON (the format is fedlab-rspec+json)`, {
        field: `${field}.request.request_document`,
      });
    }
    const nodes = (doc as { nodes?: unknown }).nodes;
    if (!Array.isArray(nodes) || nodes.length === 0)
      throw new InvalidArgumentError(`${field}.request.request_document must list nodes`, { field: `${field}.request.request_document` });
    slivers = nodes.length;
    perNode = nodes.map((n) => {
      const r = (n as { resources?: Record<string, number> })?.resources ?? {};
      return {
        cpuMillis: Number(r.cpu_millis) || defaults.cpu_millis,
        memMb: Number(r.mem_mb) || defaults.mem_mb,
        diskMb: Number(r.disk_mb) || defaults.disk_mb,
      };
    });
  } else {
    const sel = request.nodes;
    if (!sel)
      throw new InvalidArgumentError(`${field}.request.nodes is required: node_urns, or a count`, { field: `${field}.request.nodes` });
    sel.nodeUrns.forEach((u, j) => {
      const urn = urnField(`${field}.request.nodes.node_urns[${j}]`, u, 'node');
      if (urn.domain !== site)
        throw new InvalidArgumentError(`${field}.request.nodes.node_urns[${j}] ${u} is not a node of ${site}`, {
          field: `${field}.request.nodes.node_urns`,
        });
    });
    if (new Set(sel.nodeUrns).size !== sel.nodeUrns.length)
      throw new InvalidArgumentError(`${field}.request.nodes.node_urns names a node twice`, { field: `${field}.request.nodes.node_urns` });
    if (sel.nodeUrns.length > 0 && sel.count !== 0 && sel.count !== sel.nodeUrns.length) {
      throw new InvalidArgumentError(`${field}.request.nodes: count must be 0 or the number of node_urns`, {
        field: `${field}.request.nodes.count`,
      });
    }
    slivers = sel.nodeUrns.length || sel.count;
    if (slivers === 0)
      throw new InvalidArgumentError(`${field}.request.nodes: name nodes (node_urns) or ask for a count of at least 1`, {
        field: `${field}.request.nodes`,
      });
  }
  const max = book.deps.limits.max_nodes_per_site;
  if (slivers > max)
    throw new InvalidArgumentError(`${field} asks for ${slivers} nodes; at most ${max} per site`, { field: `${field}.request.nodes` });
  const use: Use = perNode
    ? perNode.reduce<Use>((a, p) => addUse(a, { slivers: 1, ...p }), NO_USE)
    : { slivers, cpuMillis: slivers * per.cpuMillis, memMb: slivers * per.memMb, diskMb: slivers * per.diskMb };
  return {
    site,
    aggregateUrn: s.maUrn,
    style: SiteStyle.SITE_STYLE_UNSPECIFIED,
    request: ResourceRequest.toJSON(stitches?.length ? { ...request, stitches: { ends: stitches } } : request),
    code: 0,
    reason: '',
    manifest: '',
    swappedOut: false,
    slivers: [],
    use,
  };
}
