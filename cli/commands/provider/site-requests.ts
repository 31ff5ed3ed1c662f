/** Where `fedlab deploy` asks for nodes: `--site DOMAIN=COUNT` and `--node URN` turned into per-site requests. */
import { InvalidArgumentError } from '../../../services/core/errors.js';
import { isUrn, isValidDomain, parseUrn } from '../../../services/core/identity/urn.js';
import type { SiteRequest } from '../../../services/generated/fedlab/v1/common.js';

/** Parses `--site DOMAIN=COUNT` and `--node URN` into per-site requests. */
export function siteRequests(
  sites: readonly string[],
  nodes: readonly string[],
  resources: { cpuMillis: number; memMb: number; diskMb: number },
): SiteRequest[] {
  const out = new Map<string, SiteRequest>();
  const req = (site: string): SiteRequest => {
    let r = out.get(site);
    if (!r) {
      r = {
        site,
        request: {
          nodes: { nodeUrns: [], count: 0, clientIds: [] },
          resources: { cpuMillis: resources.cpuMillis, memMb: resources.memMb, diskMb: resources.diskMb, pids: 0, bandwidthKbps: 0 },
          links: [],
          exclusive: false,
          requestDocument: '',
          requestDocumentFormat: '',
        },
      };
      out.set(site, r);
    }
    return r;
  };
  for (const s of sites) {
    const m = /^([^=]+)(?:=([0-9]+))?$/.exec(s);
    if (!m || !isValidDomain(m[1] as string) || (m[2] !== undefined && Number(m[2]) <= 0)) {
      throw new InvalidArgumentError(`--site must be DOMAIN or DOMAIN=COUNT (e.g. plc.test=2), got ${JSON.stringify(s)}`);
    }
    const r = req(m[1] as string);
    if ((r.request?.nodes?.nodeUrns.length ?? 0) > 0)
      throw new InvalidArgumentError(`--site ${m[1]}: give a count or --node URNs for a site, not both`);
    (r.request?.nodes as { count: number }).count = Number(m[2] ?? 1);
  }
  for (const n of nodes) {
    if (!isUrn(n) || parseUrn(n).kind !== 'node')
      throw new InvalidArgumentError(`--node must be a node URN urn:fedlab:<site>:node:<name>, got ${JSON.stringify(n)}`);
    const r = req(parseUrn(n).domain);
    if ((r.request?.nodes?.count ?? 0) > 0) throw new InvalidArgumentError(`--node ${n}: its site already has --site with a count`);
    r.request?.nodes?.nodeUrns.push(n);
  }
  if (out.size === 0) throw new InvalidArgumentError('say where to deploy: --site DOMAIN=COUNT (repeatable) or --node URN (repeatable)');
  return [...out.values()];
}

/**
 * Names every requested node for `--stitch` (ProtoGENI client ids): `0` … `COUNT-1` for `--site DOMAIN=COUNT`,
 * the node's name for `--node URN`.
 */
export function nameNodes(requests: readonly SiteRequest[]): void {
  for (const r of requests) {
    const nodes = r.request?.nodes;
    if (!nodes) continue;
    nodes.clientIds =
      nodes.nodeUrns.length > 0 ? nodes.nodeUrns.map((u) => parseUrn(u).name) : Array.from({ length: nodes.count }, (_, i) => String(i));
  }
}
