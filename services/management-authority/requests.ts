/**
 * Reading an aggregate request into one normal form, whatever the style: the
 * slivers wanted (a named node, or "any node with this much free"), their
 * resources, exclusivity and the links between them. Each style's rules are
 * here (docs/design.md §3): planetlab shares nodes and has no links; emulab gives
 * whole nodes and wires links; protogeni takes request documents
 * (`fedlab-rspec+json`) and may ask for whole nodes. Everything is checked
 * before anything is held, so bad input changes nothing.
 */
import { FailedPreconditionError, InvalidArgumentError } from '../core/errors.js';
import { parseUrn } from '../core/identity/urn.js';
import type { Link, ResourceRequest, ResourceSpec } from '../generated/fedlab/v1/common.js';
import type { StyleName } from './config.js';
import { RESOURCE_FIELDS, resourcesOf, type Resources } from './records.js';

/** The request and manifest document format this site reads and writes. */
export const RSPEC_FORMAT = 'fedlab-rspec+json';

/** Most slivers one request may ask for. */
export const MAX_REQUEST_NODES = 10_000;
/** Most links one slice may have (each gets its own /24). */
export const MAX_LINKS = 256;

/** Absurdly large amounts, refused outright. */
const ABSURD: Resources = { cpuMillis: 1_024_000, memMb: 16 * 1024 * 1024, diskMb: 1024 * 1024 * 1024, pids: 4_194_304 };

/** One sliver wanted. */
export interface WantedSliver {
  readonly clientId: string;
  /** A named node; undefined: the site picks. */
  readonly nodeUrn?: string;
  readonly resources: Resources;
  /** Least a picked node must have free. */
  readonly minFree: Resources;
  readonly exclusive: boolean;
  /** The image asked for (`oci:<name>`); absent: `host`, every node's default. */
  readonly image?: string;
}

/** A link wanted (before it gets a subnet). */
export interface WantedLink {
  readonly name: string;
  readonly endpoints: readonly string[];
  readonly bandwidthKbps: number;
  readonly delayMs: number;
  readonly lossPercent: number;
}

/** A request in normal form. */
export interface NormalRequest {
  readonly slivers: readonly WantedSliver[];
  readonly links: readonly WantedLink[];
  /** The request document's format, '' when none was used. */
  readonly documentFormat: string;
}

/** What a style allows. */
export interface StyleRules {
  readonly style: StyleName;
  readonly sharedNodes: boolean;
  readonly links: boolean;
  readonly documents: boolean;
  readonly swap: boolean;
}

/** The rules of each style. */
export function styleRules(style: StyleName): StyleRules {
  switch (style) {
    case 'planetlab':
      return { style, sharedNodes: true, links: false, documents: false, swap: false };
    case 'emulab':
      return { style, sharedNodes: false, links: true, documents: false, swap: true };
    case 'protogeni':
      return { style, sharedNodes: true, links: false, documents: true, swap: false };
  }
}

/** Site settings a request is read against. */
export interface RequestContext {
  readonly rules: StyleRules;
  readonly domain: string;
  readonly defaults: Resources;
  readonly maxLinkKbps: number;
}

const CLIENT_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const LINK_NAME = /^[A-Za-z0-9._-]{1,64}$/;

function bad(field: string, why: string): never {
  throw new InvalidArgumentError(`${field}: ${why}`, { field });
}

/** Zero fields take the site's defaults; absurd amounts are refused. */
export function resolveResources(spec: ResourceSpec | undefined, defaults: Resources, field = 'request.resources'): Resources {
  const r = resourcesOf(spec);
  const out: Record<string, number> = {};
  for (const [k, protoField] of RESOURCE_FIELDS) {
    const v = r[k];
    if (!Number.isSafeInteger(v) || v < 0) bad(`${field}.${protoField}`, 'must be a whole number of 0 or more');
    if (v > ABSURD[k]) bad(`${field}.${protoField}`, `${v} is absurd (at most ${ABSURD[k]})`);
    out[k] = v === 0 ? defaults[k] : v;
  }
  return out as unknown as Resources;
}

/** An image name as nodes take it: `host` or `oci:<name>`. */
const IMAGE_NAME = /^(host|oci:[a-z0-9][a-z0-9._-]{0,62})$/;

/** The image a request names: undefined for none or `host` (the default), `oci:<name>` as given; anything else is INVALID_ARGUMENT. */
export function imageOf(image: string | undefined, field = 'request.resources.image'): string | undefined {
  if (image === undefined || image === '' || image === 'host') return undefined;
  if (!IMAGE_NAME.test(image))
    bad(field, `${JSON.stringify(image.slice(0, 80))} is not an image name: "host" or "oci:<name>" (see ListResources)`);
  return image;
}

function maxOf(a: Resources, b: Resources): Resources {
  return {
    cpuMillis: Math.max(a.cpuMillis, b.cpuMillis),
    memMb: Math.max(a.memMb, b.memMb),
    diskMb: Math.max(a.diskMb, b.diskMb),
    pids: Math.max(a.pids, b.pids),
  };
}

function nodeUrnAt(value: string, field: string, domain: string): string {
  let urn;
  try {
    urn = parseUrn(value);
  } catch (err) {
    return bad(field, (err as Error).message);
  }
  if (urn.kind !== 'node') bad(field, `${value} is not a node URN`);
  if (urn.domain !== domain)
    bad(
      field,
      `node ${value} is not at this site (its domain is ${urn.domain}, this site's is ${domain}); ask that site's aggregate for it`,
    );
  return value;
}

/** Reads an Allocate request into normal form, enforcing the site's style. */
export function normalizeRequest(req: ResourceRequest | undefined, ctx: RequestContext): NormalRequest {
  if (!req) bad('request', 'is required');
  const rules = ctx.rules;
  if (req.requestDocument !== '') {
    if (!rules.documents) {
      throw new FailedPreconditionError(
        `this is a ${rules.style}-style site; it takes no request documents — send nodes, resources and links instead`,
        { rule: 'style' },
      );
    }
    if (req.nodes || req.resources || req.links.length || req.exclusive) {
      bad(
        'request.request_document',
        'when a request document is given, it is authoritative: leave nodes, resources, links and exclusive unset',
      );
    }
    if (req.requestDocumentFormat !== RSPEC_FORMAT)
      bad('request.request_document_format', `must be ${RSPEC_FORMAT} (see GetVersion.request_document_formats)`);
    return fromDocument(req.requestDocument, ctx);
  }
  if (req.requestDocumentFormat !== '') bad('request.request_document_format', 'is set but request_document is empty');
  if (req.exclusive && rules.style === 'planetlab') {
    throw new FailedPreconditionError(
      'this is a planetlab-style site: nodes are shared, never given whole to one slice; ask without exclusive',
      { rule: 'style' },
    );
  }
  const exclusive = !rules.sharedNodes || req.exclusive;
  const resources = resolveResources(req.resources, ctx.defaults);
  const image = imageOf(req.resources?.image);
  const sel = req.nodes;
  if (!sel) bad('request.nodes', 'is required: name nodes (node_urns) or ask for a count');
  const minFree = maxOf(resources, resourcesOf(sel.minFree));
  const slivers: WantedSliver[] = [];
  if (sel.nodeUrns.length > 0) {
    if (sel.count !== 0 && sel.count !== sel.nodeUrns.length)
      bad('request.nodes.count', `must be 0 or ${sel.nodeUrns.length} (the number of node_urns)`);
    if (sel.clientIds.length !== 0 && sel.clientIds.length !== sel.nodeUrns.length)
      bad('request.nodes.client_ids', 'must be empty or one per node URN');
    if (sel.nodeUrns.length > MAX_REQUEST_NODES) bad('request.nodes.node_urns', `at most ${MAX_REQUEST_NODES} nodes per request`);
    const seen = new Set<string>();
    for (const [i, u] of sel.nodeUrns.entries()) {
      const nodeUrn = nodeUrnAt(u, `request.nodes.node_urns[${i}]`, ctx.domain);
      if (seen.has(nodeUrn)) bad('request.nodes.node_urns', `${nodeUrn} is named twice`);
      seen.add(nodeUrn);
      slivers.push({ clientId: sel.clientIds[i] ?? nodeUrn, nodeUrn, resources, minFree, exclusive, ...(image ? { image } : {}) });
    }
  } else {
    if (sel.count === 0) bad('request.nodes', 'name nodes (node_urns) or ask for a count of nodes');
    if (sel.count > MAX_REQUEST_NODES) bad('request.nodes.count', `at most ${MAX_REQUEST_NODES} nodes per request`);
    if (sel.clientIds.length !== 0 && sel.clientIds.length !== sel.count)
      bad('request.nodes.client_ids', 'must be empty or one per node (count)');
    for (let i = 0; i < sel.count; i++)
      slivers.push({ clientId: sel.clientIds[i] ?? String(i), resources, minFree, exclusive, ...(image ? { image } : {}) });
  }
  checkClientIds(slivers);
  const links = checkLinks(req.links, slivers, ctx);
  return { slivers, links, documentFormat: '' };
}

function checkClientIds(slivers: readonly WantedSliver[]): void {
  const seen = new Set<string>();
  for (const s of slivers) {
    if (!CLIENT_ID.test(s.clientId))
      bad(
        'request.nodes.client_ids',
        `client id ${JSON.stringify(s.clientId.slice(0, 40))} must be 1 to 128 characters of [A-Za-z0-9._:-]`,
      );
    if (seen.has(s.clientId)) bad('request.nodes.client_ids', `client id ${s.clientId} is used twice`);
    seen.add(s.clientId);
  }
}

/** Checks links: only where the style has them, endpoints among the request's slivers (never another site's nodes), sane amounts. */
export function checkLinks(links: readonly Link[], slivers: readonly WantedSliver[], ctx: RequestContext): WantedLink[] {
  if (links.length === 0) return [];
  if (!ctx.rules.links) {
    throw new FailedPreconditionError(
      `this is a ${ctx.rules.style}-style site: it has no topology links; ask an emulab-style site for links`,
      { rule: 'style' },
    );
  }
  if (links.length > MAX_LINKS) bad('request.links', `at most ${MAX_LINKS} links per slice`);
  const ids = new Set(slivers.map((s) => s.clientId));
  const names = new Set<string>();
  return links.map((l, i) => {
    const f = `request.links[${i}]`;
    if (!LINK_NAME.test(l.name)) bad(`${f}.name`, 'must be 1 to 64 characters of [A-Za-z0-9._-]');
    if (names.has(l.name)) bad(`${f}.name`, `link ${l.name} is named twice`);
    names.add(l.name);
    if (l.endpoints.length < 2) bad(`${f}.endpoints`, `link ${l.name} needs at least two endpoints`);
    const twice = l.endpoints.find((e, k) => l.endpoints.indexOf(e) !== k);
    if (twice !== undefined) bad(`${f}.endpoints`, `link ${l.name} names endpoint ${JSON.stringify(twice.slice(0, 80))} twice`);
    for (const e of l.endpoints) {
      if (ids.has(e)) continue;
      if (e.startsWith('urn:fedlab:')) {
        let domain = '';
        try {
          domain = parseUrn(e).domain;
        } catch {
          // Not a URN after all: reported as unknown below.
        }
        if (domain && domain !== ctx.domain) {
          bad(`${f}.endpoints`, `link ${l.name} reaches ${e}, a node of another site (${domain}); links join nodes of one site only`);
        }
      }
      bad(`${f}.endpoints`, `link ${l.name}: endpoint ${JSON.stringify(e.slice(0, 80))} is not a client id of this request`);
    }
    if (!Number.isSafeInteger(l.bandwidthKbps) || l.bandwidthKbps < 0 || l.bandwidthKbps > ctx.maxLinkKbps) {
      bad(`${f}.bandwidth_kbps`, `link ${l.name}: must be 0 (unshaped) to ${ctx.maxLinkKbps}, not ${l.bandwidthKbps}`);
    }
    if (!Number.isSafeInteger(l.delayMs) || l.delayMs < 0 || l.delayMs > 10_000) bad(`${f}.delay_ms`, `link ${l.name}: must be 0 to 10000`);
    if (!Number.isFinite(l.lossPercent) || l.lossPercent < 0 || l.lossPercent > 100)
      bad(`${f}.loss_percent`, `link ${l.name}: must be 0 to 100`);
    return { name: l.name, endpoints: [...l.endpoints], bandwidthKbps: l.bandwidthKbps, delayMs: l.delayMs, lossPercent: l.lossPercent };
  });
}

const DOC_NODE_KEYS = new Set(['client_id', 'component_id', 'exclusive', 'resources']);
const DOC_RES_KEYS = new Set(['cpu_millis', 'mem_mb', 'disk_mb', 'pids', 'image']);

/**
 * Reads a `fedlab-rspec+json` request document:
 * `{"type":"request","nodes":[{"client_id":"a","component_id":"urn:...:node:n1","exclusive":false,"resources":{"cpu_millis":500}}],"links":[...]}`.
 * `component_id` is optional (the site picks a node); `resources.image` names an image (`oci:<name>`);
 * links use the Link field names.
 */
export function fromDocument(text: string, ctx: RequestContext): NormalRequest {
  const f = 'request.request_document';
  if (text.length > 256 * 1024) bad(f, 'is larger than 256 KiB');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return bad(f, `is not JSON (${RSPEC_FORMAT})`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) bad(f, 'must be a JSON object');
  const fields = doc as Record<string, unknown>;
  for (const k of Object.keys(fields))
    if (!['type', 'nodes', 'links'].includes(k)) bad(f, `unknown key ${JSON.stringify(k.slice(0, 40))} (keys: type, nodes, links)`);
  if (fields.type !== undefined && fields.type !== 'request') bad(`${f}.type`, 'must be "request"');
  if (!Array.isArray(fields.nodes) || fields.nodes.length === 0) bad(`${f}.nodes`, 'must list at least one node');
  if (fields.nodes.length > MAX_REQUEST_NODES) bad(`${f}.nodes`, `at most ${MAX_REQUEST_NODES} nodes`);
  const slivers: WantedSliver[] = fields.nodes.map((n: unknown, i: number) => {
    const nf = `${f}.nodes[${i}]`;
    if (typeof n !== 'object' || n === null || Array.isArray(n)) bad(nf, 'must be an object');
    const node = n as Record<string, unknown>;
    for (const k of Object.keys(node)) if (!DOC_NODE_KEYS.has(k)) bad(nf, `unknown key ${JSON.stringify(k.slice(0, 40))}`);
    if (typeof node.client_id !== 'string') bad(`${nf}.client_id`, 'is required');
    if (node.exclusive !== undefined && typeof node.exclusive !== 'boolean') bad(`${nf}.exclusive`, 'must be true or false');
    let spec: ResourceSpec | undefined;
    let image: string | undefined;
    if (node.resources !== undefined) {
      if (typeof node.resources !== 'object' || node.resources === null) bad(`${nf}.resources`, 'must be an object');
      const r = node.resources as Record<string, unknown>;
      for (const [k, v] of Object.entries(r)) {
        if (!DOC_RES_KEYS.has(k)) bad(`${nf}.resources`, `unknown key ${JSON.stringify(k.slice(0, 40))}`);
        if (k === 'image') {
          if (typeof v !== 'string') bad(`${nf}.resources.image`, 'must be a string: "host" or "oci:<name>"');
          image = imageOf(v, `${nf}.resources.image`);
          continue;
        }
        if (!Number.isSafeInteger(v) || (v as number) < 0) bad(`${nf}.resources.${k}`, 'must be a whole number of 0 or more');
      }
      spec = {
        cpuMillis: (r.cpu_millis as number) ?? 0,
        memMb: (r.mem_mb as number) ?? 0,
        diskMb: (r.disk_mb as number) ?? 0,
        pids: (r.pids as number) ?? 0,
        bandwidthKbps: 0,
      };
    }
    const resources = resolveResources(spec, ctx.defaults, `${nf}.resources`);
    const nodeUrn = node.component_id === undefined ? undefined : nodeUrnAt(String(node.component_id), `${nf}.component_id`, ctx.domain);
    return {
      clientId: node.client_id,
      ...(nodeUrn ? { nodeUrn } : {}),
      resources,
      minFree: resources,
      exclusive: !ctx.rules.sharedNodes || node.exclusive === true,
      ...(image ? { image } : {}),
    };
  });
  checkClientIds(slivers);
  const named = slivers.filter((s) => s.nodeUrn).map((s) => s.nodeUrn);
  if (new Set(named).size !== named.length) bad(`${f}.nodes`, 'a component_id is named twice');
  let links: Link[] = [];
  if (fields.links !== undefined) {
    if (!Array.isArray(fields.links)) bad(`${f}.links`, 'must be a list');
    links = fields.links.map((l: unknown, i: number) => {
      if (typeof l !== 'object' || l === null) bad(`${f}.links[${i}]`, 'must be an object');
      const x = l as Record<string, unknown>;
      return {
        name: String(x.name ?? ''),
        endpoints: Array.isArray(x.endpoints) ? x.endpoints.map(String) : [],
        bandwidthKbps: Number(x.bandwidth_kbps ?? 0),
        delayMs: Number(x.delay_ms ?? 0),
        lossPercent: Number(x.loss_percent ?? 0),
      };
    });
  }
  return { slivers, links: checkLinks(links, slivers, ctx), documentFormat: RSPEC_FORMAT };
}
