/**
 * `fedlab slice create|ls|show|renew|delete`: slices, against a slice
 * authority, as one of its providers (or an administrator, for ls/show).
 * `create` asks for nodes per site (`--site plc.test=3`, or named nodes
 * `--site plc.test=n1,n2`) and follows the slice's progress per node — a
 * progress bar in a terminal, plain lines otherwise; `--json` on every
 * command prints the slice (or slices) as JSON instead.
 * Exit codes: 0 done; 1 the SA refused, could not be reached, or the slice
 * FAILED (the message names each failed site and node and why); 2 bad input.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { InvalidArgumentError } from '../../services/core/errors.js';
import { isUrn, isValidDomain, isValidName, parseUrn } from '../../services/core/identity/urn.js';
import { createClient, type PromiseClient } from '../../services/core/rpc/client.js';
import { AllocationState, OperationalState, ResourceRequest, SiteStyle, SliceMode, type SiteRequest } from '../../services/generated/fedlab/v1/common.js';
import { Slice, SliceAuthorityService, SliceState, type SiteResult, type WatchSliceResponse } from '../../services/generated/fedlab/v1/slice_authority.js';
import { action, checkAddress, CliExit, EXIT_FAILURE, parsePositiveInt, printJson, tlsFrom } from '../cli-support.js';
import { refused } from '../remote.js';
import { RSPEC_FORMAT } from '../../services/management-authority/requests.js';
import { parseDuration } from './cred.js';

interface ConnFlags {
  sa: string;
  saUrn?: string;
  tlsDir?: string;
  cert?: string;
  key?: string;
  ca?: string;
  timeout?: string;
  json?: boolean;
}

type Client = PromiseClient<typeof SliceAuthorityService>;

function saClient(f: ConnFlags, defaultDeadlineMs = 30_000): Client {
  checkAddress(f.sa, '--sa');
  if (f.saUrn !== undefined && !isUrn(f.saUrn)) throw new InvalidArgumentError(`--sa-urn ${JSON.stringify(f.saUrn)} is not a URN`);
  return createClient(SliceAuthorityService, {
    address: f.sa,
    tls: tlsFrom(f),
    deadlineMs: f.timeout ? parseDuration(f.timeout, '--timeout') * 1000 : defaultDeadlineMs,
    ...(f.saUrn ? { serverUrn: f.saUrn } : {}),
  });
}

function withConn(cmd: Command): Command {
  return cmd
    .requiredOption('--sa <host:port>', "the slice authority's address")
    .option('--sa-urn <urn>', "pin the SA's certificate to this URN (instead of checking its host name)")
    .option('--tls-dir <dir>', 'your key.pem, cert.pem and ca.pem (as `fedlab certs issue --out` writes them)')
    .option('--cert <file>', 'your certificate (PEM)')
    .option('--key <file>', 'your private key (PEM)')
    .option('--ca <file>', "the CA certificate that verifies the SA (PEM)")
    .option('--timeout <duration>', 'deadline of each call, e.g. 30s (default 30s; create waits as long as the sites take)')
    .option('--json', 'print JSON instead of tables and progress');
}

// ---- Rendering -----------------------------------------------------------------------------------

const STATE: Record<number, string> = {
  [SliceState.SLICE_STATE_PENDING]: 'PENDING',
  [SliceState.SLICE_STATE_READY]: 'READY',
  [SliceState.SLICE_STATE_PARTIAL]: 'PARTIAL',
  [SliceState.SLICE_STATE_FAILED]: 'FAILED',
  [SliceState.SLICE_STATE_DELETING]: 'DELETING',
  [SliceState.SLICE_STATE_DELETED]: 'DELETED',
  [SliceState.SLICE_STATE_EXPIRED]: 'EXPIRED',
};
const STYLE: Record<number, string> = { [SiteStyle.SITE_STYLE_PLANETLAB]: 'planetlab', [SiteStyle.SITE_STYLE_EMULAB]: 'emulab', [SiteStyle.SITE_STYLE_PROTOGENI]: 'protogeni' };
const ALLOC: Record<number, string> = {
  [AllocationState.ALLOCATION_STATE_UNALLOCATED]: 'unallocated',
  [AllocationState.ALLOCATION_STATE_ALLOCATED]: 'allocated',
  [AllocationState.ALLOCATION_STATE_PROVISIONED]: 'provisioned',
};
const OPSTATE: Record<number, string> = {
  [OperationalState.OPERATIONAL_STATE_PENDING]: 'pending',
  [OperationalState.OPERATIONAL_STATE_NOTREADY]: 'notready',
  [OperationalState.OPERATIONAL_STATE_CONFIGURING]: 'configuring',
  [OperationalState.OPERATIONAL_STATE_READY]: 'ready',
  [OperationalState.OPERATIONAL_STATE_STOPPING]: 'stopping',
  [OperationalState.OPERATIONAL_STATE_STOPPED]: 'stopped',
  [OperationalState.OPERATIONAL_STATE_FAILED]: 'failed',
};
const CODE: Record<number, string> = { 0: 'OK', 1: 'CANCELLED', 2: 'UNKNOWN', 3: 'INVALID_ARGUMENT', 4: 'DEADLINE_EXCEEDED', 5: 'NOT_FOUND', 6: 'ALREADY_EXISTS', 7: 'PERMISSION_DENIED', 8: 'RESOURCE_EXHAUSTED', 9: 'FAILED_PRECONDITION', 10: 'ABORTED', 13: 'INTERNAL', 14: 'UNAVAILABLE', 16: 'UNAUTHENTICATED' };

function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i] as number)).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}

function time(d: Date | undefined): string {
  return d ? d.toISOString().replace(/\.\d{3}Z$/, 'Z') : '-';
}

function liveSlivers(s: Slice): Slice['slivers'] {
  return s.slivers.filter((x) => x.allocationState === AllocationState.ALLOCATION_STATE_PROVISIONED);
}

/** The slices as a table. */
export function sliceTable(slices: readonly Slice[]): string {
  return table(
    ['SLICE', 'STATE', 'SITES', 'SLIVERS (ready/live)', 'EXPIRES', 'PROVIDER'],
    slices.map((s) => [
      s.urn,
      STATE[s.state] ?? '?',
      s.sites.map((x) => (x.status?.code ? `${x.site}!` : x.site)).join(','),
      `${liveSlivers(s).filter((x) => x.operationalState === OperationalState.OPERATIONAL_STATE_READY).length}/${liveSlivers(s).length}`,
      time(s.expiresAt),
      s.providerUrn,
    ]),
  );
}

/** One slice in detail: header, sites, slivers. */
export function sliceDetail(s: Slice): string {
  const head = [
    `slice      ${s.urn}`,
    `state      ${STATE[s.state] ?? '?'}`,
    `provider   ${s.providerUrn}`,
    `mode       ${s.mode === SliceMode.SLICE_MODE_BEST_EFFORT ? 'best effort' : 'all or nothing'}`,
    `created    ${time(s.createdAt)}`,
    `expires    ${time(s.expiresAt)}`,
    ...(s.description ? [`about      ${s.description}`] : []),
  ].join('\n');
  const sites = table(
    ['SITE', 'STYLE', 'STATUS', 'EXPIRES', 'REASON'],
    s.sites.map((x) => [x.site, STYLE[x.style] ?? '-', CODE[x.status?.code ?? 0] ?? String(x.status?.code), time(x.expiresAt), x.status?.reason ?? '']),
  );
  const slivers = table(
    ['SLIVER', 'NODE', 'ALLOCATION', 'STATE', 'EXPIRES', 'ERROR'],
    s.slivers.map((x) => [x.urn, x.nodeUrn || '-', ALLOC[x.allocationState] ?? '-', OPSTATE[x.operationalState] ?? '-', time(x.expiresAt), x.error]),
  );
  return `${head}\n\n${sites}\n\n${slivers.split('\n').length > 1 ? slivers : 'no slivers'}`;
}

function resultsTable(results: readonly SiteResult[]): string {
  return table(
    ['SITE', 'STATUS', 'SLIVERS OK', 'REASON'],
    results.map((r) => [r.site, CODE[r.status?.code ?? 0] ?? String(r.status?.code), `${r.slivers.filter((x) => !x.status?.code).length}/${r.slivers.length}`, r.status?.reason ?? '']),
  );
}

/** Why a slice failed, site by site and node by node (for stderr). */
export function failureLines(s: Slice): string[] {
  const out: string[] = [];
  for (const site of s.sites) if (site.status?.code) out.push(`site ${site.site}: ${CODE[site.status.code] ?? site.status.code}: ${site.status.reason}`);
  for (const x of s.slivers) if (x.error) out.push(`node ${x.nodeUrn || '(none)'} (${x.urn}): ${x.error}`);
  return out;
}

// ---- Progress ------------------------------------------------------------------------------------

/** Progress of a slice being made: a bar redrawn in place on a terminal, one plain line per event otherwise. */
class Progress {
  private readonly done = new Map<string, string>();
  private total = 0;
  private drawn = false;

  constructor(
    private readonly tty: boolean,
    private readonly out: NodeJS.WritableStream = process.stdout,
  ) {}

  expect(total: number): void {
    this.total = total;
  }

  event(e: WatchSliceResponse): void {
    if (e.nodeUrn) this.done.set(e.nodeUrn, e.message);
    if (this.tty) {
      if (e.status?.code && e.site) this.line(`${e.site}: ${e.message}`);
      this.draw(e.site ? `${e.site}${e.nodeUrn ? ` ${e.nodeUrn.split(':').pop()}` : ''}: ${e.message}` : e.message);
      return;
    }
    const where = [e.site, e.nodeUrn].filter((x) => x).join(' ');
    this.out.write(`${where ? `${where} ` : ''}${e.message}\n`);
  }

  private line(text: string): void {
    if (this.drawn) this.out.write('\r\x1b[2K');
    this.out.write(`${text}\n`);
    this.drawn = false;
  }

  private draw(last: string): void {
    const finished = [...this.done.values()].filter((m) => m === 'started' || m === 'provisioned' || /failed/.test(m)).length;
    const total = Math.max(this.total, this.done.size, 1);
    const width = 24;
    const filled = Math.min(width, Math.round((finished / total) * width));
    const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${finished}/${total} nodes`;
    this.out.write(`\r\x1b[2K${bar}  ${last.slice(0, 60)}`);
    this.drawn = true;
  }

  end(): void {
    if (this.tty && this.drawn) this.out.write('\n');
    this.drawn = false;
  }
}

// ---- Commands ------------------------------------------------------------------------------------

/** Parses `--site DOMAIN=COUNT` or `--site DOMAIN=NODE[,NODE...]` (node names or URNs). */
export function parseSiteSpec(spec: string): { site: string; count: number; nodeUrns: string[] } {
  const m = /^([^=]+)=(.+)$/.exec(spec.trim());
  if (!m) throw new InvalidArgumentError(`--site ${JSON.stringify(spec)}: write DOMAIN=COUNT (e.g. plc.test=3) or DOMAIN=NODE,NODE (e.g. plc.test=n1,n2)`);
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

/** How many nodes a site request asks for (for the progress bar). */
function expectedNodes(r: ResourceRequest | undefined): number {
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
  resources: ['cpuMillis', 'cpu_millis', 'memMb', 'mem_mb', 'diskMb', 'disk_mb', 'pids', 'bandwidthKbps', 'bandwidth_kbps'],
  link: ['name', 'endpoints', 'bandwidthKbps', 'bandwidth_kbps', 'delayMs', 'delay_ms', 'lossPercent', 'loss_percent'],
};

/** Refuses keys a request file must not have (a misspelt key would otherwise be silently ignored). */
function checkKeys(where: string, value: unknown, kind: keyof typeof REQUEST_KEYS): void {
  if (value === undefined) return;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidArgumentError(`${where} must be a JSON object`);
  for (const k of Object.keys(value)) {
    if (!(REQUEST_KEYS[kind] as readonly string[]).includes(k)) throw new InvalidArgumentError(`${where}: unknown key ${JSON.stringify(k)} (allowed: ${(REQUEST_KEYS[kind] as readonly string[]).filter((x) => !x.includes('_')).join(', ')})`);
  }
}

/**
 * Parses `--request DOMAIN=FILE`: the file is either a site request in the API's JSON (`nodes`,
 * `resources`, `links`, `exclusive` — links join nodes by their client ids) or a request document
 * (`fedlab-rspec+json`, recognised by `"type": "request"`), which the site reads as it is.
 */
export function parseRequestSpec(spec: string, read: (file: string) => string): { site: string; request: ResourceRequest } {
  const m = /^([^=]+)=(.+)$/.exec(spec.trim());
  if (!m) throw new InvalidArgumentError(`--request ${JSON.stringify(spec)}: write DOMAIN=FILE (e.g. emu.test=topology.json)`);
  const site = m[1] as string;
  const file = m[2] as string;
  if (!isValidDomain(site)) throw new InvalidArgumentError(`--request ${JSON.stringify(spec)}: ${JSON.stringify(site)} is not a site domain`);
  let text: string;
  try {
    text = read(file);
  } catch (err) {
    throw new InvalidArgumentError(`--request ${site}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
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
  const o = json as Record<string, unknown>;
  checkKeys(`${where} nodes`, o.nodes, 'nodes');
  checkKeys(`${where} resources`, o.resources, 'resources');
  if (o.links !== undefined && !Array.isArray(o.links)) throw new InvalidArgumentError(`${where}: links must be a list`);
  for (const [i, l] of ((o.links as unknown[] | undefined) ?? []).entries()) checkKeys(`${where} links[${i}]`, l, 'link');
  const request = ResourceRequest.fromJSON(o);
  if (!request.nodes || (request.nodes.count === 0 && request.nodes.nodeUrns.length === 0)) {
    throw new InvalidArgumentError(`${where}: say which nodes: nodes.count, or nodes.node_urns`);
  }
  return { site, request: { ...request, requestDocument: '', requestDocumentFormat: '' } };
}

/** A slice URN from a URN or a name (looked up among the caller's slices). */
async function resolveSlice(client: Client, ref: string): Promise<string> {
  if (isUrn(ref)) {
    if (parseUrn(ref).kind !== 'slice') throw new InvalidArgumentError(`${ref} is not a slice URN`);
    return ref;
  }
  if (!isValidName(ref)) throw new InvalidArgumentError(`${JSON.stringify(ref)} is neither a slice URN nor a slice name`);
  let token = '';
  do {
    const page = await client.listSlices({ pageSize: 1000, pageToken: token, state: SliceState.SLICE_STATE_UNSPECIFIED }).catch((e: unknown) => refused(e, 'cannot list slices'));
    const hit = page.slices.find((s) => parseUrn(s.urn).name === ref);
    if (hit) return hit.urn;
    token = page.nextPageToken;
  } while (token);
  throw new CliExit(EXIT_FAILURE, `no live slice named ${ref}; list your slices with \`fedlab slice ls\` or give the slice URN`);
}

interface CreateFlags extends ConnFlags {
  site: string[];
  request: string[];
  exclusive?: boolean;
  cpuMillis?: string;
  memMb?: string;
  diskMb?: string;
  lifetime?: string;
  mode: string;
  start: boolean;
  requestId?: string;
  description?: string;
  wait: boolean;
}

async function create(name: string, f: CreateFlags): Promise<void> {
  if (!isValidName(name)) throw new InvalidArgumentError(`slice name ${JSON.stringify(name)} must match [a-z0-9][a-z0-9._-]{0,62}`);
  if (!f.site.length && !f.request.length) throw new InvalidArgumentError('give at least one --site DOMAIN=COUNT or DOMAIN=NODE,NODE, or --request DOMAIN=FILE');
  const specs = f.site.map(parseSiteSpec);
  const files = f.request.map((r) => parseRequestSpec(r, (file) => readFileSync(file, 'utf8')));
  const named = [...specs.map((s) => s.site), ...files.map((r) => r.site)];
  const twice = named.find((d, i) => named.indexOf(d) !== i);
  if (twice) throw new InvalidArgumentError(`site ${twice} is given twice; give each site once, with --site or with --request`);
  const num = (v: string | undefined, flag: string): number => (v === undefined ? 0 : parsePositiveInt(v, flag));
  const resources = { cpuMillis: num(f.cpuMillis, '--cpu-millis'), memMb: num(f.memMb, '--mem-mb'), diskMb: num(f.diskMb, '--disk-mb'), pids: 0, bandwidthKbps: 0 };
  const mode = f.mode === 'all' || f.mode === 'all-or-nothing' ? SliceMode.SLICE_MODE_ALL_OR_NOTHING : f.mode === 'best-effort' ? SliceMode.SLICE_MODE_BEST_EFFORT : undefined;
  if (mode === undefined) throw new InvalidArgumentError(`--mode must be all-or-nothing or best-effort, got ${JSON.stringify(f.mode)}`);
  const expiresAt = f.lifetime ? new Date(Date.now() + parseDuration(f.lifetime, '--lifetime') * 1000) : undefined;
  const sites: SiteRequest[] = [
    ...specs.map((s) => ({
      site: s.site,
      request: { nodes: { nodeUrns: s.nodeUrns, count: s.count, clientIds: [] }, resources, links: [], exclusive: f.exclusive === true, requestDocument: '', requestDocumentFormat: '' },
    })),
    ...files,
  ];
  const client = saClient(f);
  try {
    const requestId = f.requestId ?? `cli-${randomBytes(8).toString('hex')}`;
    const res = await client
      .createSlice({ requestId, name, description: f.description ?? '', mode, sites, start: f.start, wait: false, ...(expiresAt ? { expiresAt } : {}) })
      .catch((e: unknown) => refused(e, `cannot create slice ${name}`));
    let slice = res.slice as Slice;
    if (f.wait && (slice.state === SliceState.SLICE_STATE_PENDING || slice.state === SliceState.SLICE_STATE_DELETING)) {
      const progress = new Progress(!f.json && process.stdout.isTTY === true);
      progress.expect(sites.reduce((n, s) => n + expectedNodes(s.request), 0));
      try {
        // Follows the slice until it is stable; no deadline beyond the sites' own (the SA bounds each site).
        // A new slice's record is event 1: replaying from there shows every node's events, even
        // those that happened before the watch was opened (a snapshot would skip them).
        for await (const e of client.watchSlice({ sliceUrn: slice.urn, afterSequence: 1, follow: false }, { deadlineMs: 24 * 3_600_000 })) {
          if (!f.json && e.sequence > 0 && !(e.slice && e.message === 'snapshot')) progress.event(e);
          if (e.slice) slice = e.slice;
        }
      } catch (e) {
        refused(e, `lost track of slice ${slice.urn} (it goes on at the SA; see \`fedlab slice show\`)`);
      } finally {
        progress.end();
      }
      slice = (await client.getSlice({ sliceUrn: slice.urn }).catch((e: unknown) => refused(e, `cannot read slice ${slice.urn}`))).slice as Slice;
    }
    if (f.json) printJson(Slice.toJSON(slice));
    else process.stdout.write(`${sliceDetail(slice)}\n`);
    if (slice.state === SliceState.SLICE_STATE_FAILED) {
      throw new CliExit(EXIT_FAILURE, `slice ${slice.urn} FAILED${slice.mode === SliceMode.SLICE_MODE_ALL_OR_NOTHING ? ' (all or nothing: every site was rolled back)' : ''}:\n  ${failureLines(slice).join('\n  ')}`);
    }
    if (slice.state === SliceState.SLICE_STATE_PARTIAL) process.stderr.write(`fedlab: slice ${slice.urn} is PARTIAL:\n  ${failureLines(slice).join('\n  ')}\n`);
  } finally {
    client.close();
  }
}

/** Registers `fedlab slice`. */
export function registerSliceCommand(program: Command): void {
  const slice = program.command('slice').description('slices at a slice authority: create, list, show, renew, delete');

  withConn(
    slice
      .command('create <name>')
      .description('create a slice over nodes of one or more sites, showing progress per node')
      .option('--site <spec>', 'DOMAIN=COUNT (nodes the site picks) or DOMAIN=NODE,NODE (named nodes); repeat per site', (v: string, acc: string[]) => [...acc, v], [] as string[])
      .option('--cpu-millis <n>', 'CPU per sliver in thousandths of a core (default: each site decides)')
      .option('--mem-mb <n>', 'memory per sliver in MiB')
      .option('--disk-mb <n>', 'disk per sliver in MiB')
      .option('--exclusive', 'whole nodes for this slice (protogeni; emulab always gives whole nodes)')
      .option(
        '--request <spec>',
        'DOMAIN=FILE: the whole request for one site from a JSON file — nodes, resources, links (emulab) and exclusive in the API\'s JSON, or a fedlab-rspec+json request document; repeat per site',
        (v: string, acc: string[]) => [...acc, v],
        [] as string[],
      )
      .option('--lifetime <duration>', 'how long the slice lives, e.g. 2h or 7d (default: the SA decides)')
      .addOption(new Option('--mode <mode>', 'what a partial failure does').choices(['all-or-nothing', 'all', 'best-effort']).default('all-or-nothing'))
      .option('--no-start', 'provision the slivers but do not start them')
      .option('--no-wait', 'return once the SA recorded the request (follow it with `fedlab slice show`)')
      .option('--request-id <id>', 'idempotency key (a retry with the same id returns the same slice)')
      .option('--description <text>', 'free text'),
  ).action(action(async (name: string, f: CreateFlags) => create(name, f)));

  withConn(
    slice
      .command('ls')
      .description('list your slices (all slices for administrators)')
      .addOption(new Option('--state <state>', 'only slices in this state (default: all but deleted and expired)').choices(['pending', 'ready', 'partial', 'failed', 'deleting', 'deleted', 'expired'])),
  ).action(
    action(async (f: ConnFlags & { state?: string }) => {
      const client = saClient(f);
      try {
        const state = f.state ? (SliceState[`SLICE_STATE_${f.state.toUpperCase()}` as keyof typeof SliceState] as SliceState) : SliceState.SLICE_STATE_UNSPECIFIED;
        const all: Slice[] = [];
        let token = '';
        do {
          const page = await client.listSlices({ pageSize: 1000, pageToken: token, state }).catch((e: unknown) => refused(e, 'cannot list slices'));
          all.push(...page.slices);
          token = page.nextPageToken;
        } while (token);
        if (f.json) printJson(all.map((s) => Slice.toJSON(s)));
        else process.stdout.write(`${all.length ? sliceTable(all) : 'no slices'}\n`);
      } finally {
        client.close();
      }
    }),
  );

  withConn(slice.command('show <slice>').description('show a slice (URN or name): its sites and every sliver')).action(
    action(async (ref: string, f: ConnFlags) => {
      const client = saClient(f);
      try {
        const urn = await resolveSlice(client, ref);
        const s = (await client.getSlice({ sliceUrn: urn }).catch((e: unknown) => refused(e, `cannot read slice ${urn}`))).slice as Slice;
        if (f.json) printJson(Slice.toJSON(s));
        else process.stdout.write(`${sliceDetail(s)}\n`);
      } finally {
        client.close();
      }
    }),
  );

  withConn(
    slice
      .command('renew <slice>')
      .description('move a slice’s expiry; each site grants what its maximum and its MA → SA chain allow')
      .option('--lifetime <duration>', 'new expiry from now, e.g. 14d')
      .option('--until <time>', 'new expiry, an RFC 3339 time')
      .option('--best-effort', 'renew where possible and report the rest'),
  ).action(
    action(async (ref: string, f: ConnFlags & { lifetime?: string; until?: string; bestEffort?: boolean }) => {
      if ((f.lifetime === undefined) === (f.until === undefined)) throw new InvalidArgumentError('give exactly one of --lifetime and --until');
      const at = f.lifetime ? Date.now() + parseDuration(f.lifetime, '--lifetime') * 1000 : Date.parse(f.until as string);
      if (!Number.isFinite(at)) throw new InvalidArgumentError(`--until ${JSON.stringify(f.until)} is not a time (e.g. 2026-12-01T00:00:00Z)`);
      const client = saClient(f);
      try {
        const urn = await resolveSlice(client, ref);
        const res = await client.renewSlice({ sliceUrn: urn, expiresAt: new Date(at), bestEffort: f.bestEffort ?? false }).catch((e: unknown) => refused(e, `cannot renew slice ${urn}`));
        const s = res.slice as Slice;
        if (f.json) {
          printJson({ slice: Slice.toJSON(s), results: res.results.map((r) => ({ site: r.site, code: r.status?.code ?? 0, reason: r.status?.reason ?? '' })) });
        } else {
          const rows = s.sites.map((x) => {
            const r = res.results.find((y) => y.site === x.site);
            const granted = x.expiresAt?.getTime();
            const note = r?.status?.code ? `${CODE[r.status.code] ?? r.status.code}: ${r.status.reason}` : granted !== undefined && granted < at - 1000 ? 'capped by the site (its maximum or its MA → SA chain)' : '';
            return [x.site, time(x.expiresAt), note];
          });
          process.stdout.write(`${table(['SITE', 'EXPIRES (granted)', 'NOTE'], rows)}\nslice ${s.urn} now expires ${time(s.expiresAt)}\n`);
        }
        const failed = res.results.filter((r) => r.status?.code);
        if (failed.length) throw new CliExit(EXIT_FAILURE, `not renewed at ${failed.map((r) => `${r.site} (${r.status?.reason})`).join('; ')}`);
      } finally {
        client.close();
      }
    }),
  );

  withConn(slice.command('delete <slice>').description('delete a slice at every site (idempotent)')).action(
    action(async (ref: string, f: ConnFlags) => {
      const client = saClient(f, 120_000);
      try {
        const urn = await resolveSlice(client, ref);
        const res = await client.deleteSlice({ sliceUrn: urn }).catch((e: unknown) => refused(e, `cannot delete slice ${urn}`));
        const s = res.slice as Slice;
        if (f.json) printJson({ slice: Slice.toJSON(s), results: res.results.map((r) => ({ site: r.site, code: r.status?.code ?? 0, reason: r.status?.reason ?? '' })) });
        else process.stdout.write(`${res.results.length ? `${resultsTable(res.results)}\n` : ''}slice ${s.urn} is ${STATE[s.state] ?? '?'}\n`);
        if (s.state === SliceState.SLICE_STATE_DELETING) {
          process.stderr.write(`fedlab: some sites have not confirmed yet; the slice authority keeps retrying:\n  ${failureLines(s).join('\n  ')}\n`);
        }
      } finally {
        client.close();
      }
    }),
  );
}
