/**
 * What `fedlab slice create` asks each site for: `--site DOMAIN=COUNT` or `DOMAIN=NODE,NODE`, and
 * `--request DOMAIN=FILE` (a site request in the API's JSON, or a request document), and `--image NAME`.
 */
import { InvalidArgumentError } from '../../../services/core/errors.js';
import { isUrn, isValidDomain, isValidName, parseUrn } from '../../../services/core/identity/urn.js';
import { ResourceRequest } from '../../../services/generated/fedlab/v1/common.js';
import { RSPEC_FORMAT } from '../../../services/management-authority/requests.js';
import { parsePositiveInt } from '../../flag-values.js';

/** Parses `--site DOMAIN=COUNT` or `--site DOMAIN=NODE[,NODE...]` (node names or URNs). */
export function parseSiteSpec(spec: string): { site: string; count: number; nodeUrns: string[] } {
  const m = /^([^=]+)=(.+)$/.exec(spec.trim());
  if (!m)
    throw new InvalidArgumentError(
      `--site ${JSON.stringify(spec)}: write DOMAIN=COUNT (e.g. plc.test=3) or DOMAIN=NODE,NODE (e.g. plc.test=n1,n2)`,
    );
  const site = m[1] as string;
  if (!isValidDomain(site)) throw new InvalidArgumentError(`--site ${JSON.stringify(spec)}: ${JSON.stringify(site)} is not a site domain`);
  const rest = m[2] as string;
  if (/^[0-9]+$/.test(rest)) return { site, count: parsePositiveInt(rest, `--site ${site}`), nodeUrns: [] };
  const nodeUrns = rest.split(',').map((n) => {
    const name = n.trim();
    if (isUrn(name)) {
      const u = parseUrn(name);
      if (u.kind !== 'node' || u.domain !== site) throw new InvalidArgumentError(`--site ${site}: ${name} is not a node of ${site}`);
      return name;
    }
    if (!isValidName(name)) throw new InvalidArgumentError(`--site ${site}: ${JSON.stringify(name)} is not a node name or URN`);
    return `urn:fedlab:${site}:node:${name}`;
  });
  return { site, count: 0, nodeUrns };
}

/** Checks `--image`: `host` or `oci:<name>` (the site and its nodes check that they offer it). */
export function imageFlag(image: string): string {
  if (!/^(host|oci:[a-z0-9][a-z0-9._-]{0,62})$/.test(image)) {
    throw new InvalidArgumentError(
      `--image ${JSON.stringify(image)}: write host or oci:NAME (an image the nodes offer; see ListResources)`,
    );
  }
  return image;
}

/** How many nodes a site request asks for (for the progress bar). */
export function expectedNodes(r: ResourceRequest | undefined): number {
  if (!r) return 0;
  if (r.requestDocument) {
    const nodes = (JSON.parse(r.requestDocument) as { nodes?: unknown }).nodes;
    return Array.isArray(nodes) ? nodes.length : 0;
  }
  return r.nodes ? r.nodes.nodeUrns.length || r.nodes.count : 0;
}

/** The keys a request file may use at each level (the API's JSON names, camelCase or snake_case). */
const REQUEST_KEYS: Record<string, readonly string[]> = {
  request: ['nodes', 'resources', 'links', 'exclusive'],
  nodes: ['nodeUrns', 'node_urns', 'count', 'clientIds', 'client_ids', 'minFree', 'min_free'],
  resources: ['cpuMillis', 'cpu_millis', 'memMb', 'mem_mb', 'diskMb', 'disk_mb', 'pids', 'bandwidthKbps', 'bandwidth_kbps', 'image'],
  link: ['name', 'endpoints', 'bandwidthKbps', 'bandwidth_kbps', 'delayMs', 'delay_ms', 'lossPercent', 'loss_percent'],
};

/** Refuses keys a request file must not have (a misspelt key would otherwise be silently ignored). */
function checkKeys(where: string, value: unknown, kind: keyof typeof REQUEST_KEYS): void {
  if (value === undefined) return;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidArgumentError(`${where} must be a JSON object`);
  for (const k of Object.keys(value)) {
    if (!(REQUEST_KEYS[kind] as readonly string[]).includes(k))
      throw new InvalidArgumentError(
        `${where}: unknown key ${JSON.stringify(k)} (allowed: ${(REQUEST_KEYS[kind] as readonly string[]).filter((x) => !x.includes('_')).join(', ')})`,
      );
  }
}

/**
 * Parses `--request DOMAIN=FILE`: the file is either a site request in the API's JSON (`nodes`,
 * `resources` (with `image`), `links`, `exclusive` — links join nodes by their client ids) or a request document
 * (`fedlab-rspec+json`, recognised by `"type": "request"`), which the site reads as it is.
 */
export function parseRequestSpec(spec: string, read: (file: string) => string): { site: string; request: ResourceRequest } {
  const m = /^([^=]+)=(.+)$/.exec(spec.trim());
  if (!m) throw new InvalidArgumentError(`--request ${JSON.stringify(spec)}: write DOMAIN=FILE (e.g. emu.test=topology.json)`);
  const site = m[1] as string;
  const file = m[2] as string;
  if (!isValidDomain(site))
    throw new InvalidArgumentError(`--request ${JSON.stringify(spec)}: ${JSON.stringify(site)} is not a site domain`);
  let text: string;
  try {
    text = read(file);
  } catch (err) {
    throw new InvalidArgumentError(
      `--request ${site}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new InvalidArgumentError(`--request ${site}: ${file} is not JSON: ${(err as Error).message}`);
  }
  const empty = { nodes: { nodeUrns: [], count: 0, clientIds: [] }, links: [], exclusive: false };
  if (typeof json === 'object' && json !== null && (json as { type?: unknown }).type === 'request') {
    return { site, request: { ...empty, requestDocument: text, requestDocumentFormat: RSPEC_FORMAT } };
  }
  const where = `--request ${site} (${file})`;
  checkKeys(where, json, 'request');
  const fields = json as Record<string, unknown>;
  checkKeys(`${where} nodes`, fields.nodes, 'nodes');
  checkKeys(`${where} resources`, fields.resources, 'resources');
  if (fields.links !== undefined && !Array.isArray(fields.links)) throw new InvalidArgumentError(`${where}: links must be a list`);
  for (const [i, l] of ((fields.links as unknown[] | undefined) ?? []).entries()) checkKeys(`${where} links[${i}]`, l, 'link');
  const request = ResourceRequest.fromJSON(fields);
  if (!request.nodes || (request.nodes.count === 0 && request.nodes.nodeUrns.length === 0)) {
    throw new InvalidArgumentError(`${where}: say which nodes: nodes.count, or nodes.node_urns`);
  }
  return { site, request: { ...request, requestDocument: '', requestDocumentFormat: '' } };
}
